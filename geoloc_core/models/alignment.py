"""The geo-alignment model family (image-only, G3, DualGeo, DualGeo+text) over frozen features.

Inputs are what a frozen CLIP tower produced (pooled embedding, pooled patch tokens), the
image's ADE20K label map, and for training its GPS and caption embedding. Trainable parts:
projection heads (image->GPS space, image->text space), DualGeo's segmentation encoder and
cross-attention fusion, the GPS encoder, and one learnable temperature per contrastive term.
Every operation is per sample (MLPs, LayerNorm, attention over one image's tokens), so an
image's embedding never depends on its batch mates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from geoloc_core.encoders.geoclip import load_geoclip_weights
from geoloc_core.encoders.geoclip_files import LOCATION_ENCODER_FILE, resolve_release_file
from geoloc_core.encoders.gps import GPSEncoder
from geoloc_core.models.config import ModelConfig
from geoloc_core.models.cross_attention import BidirectionalCrossAttention
from geoloc_core.models.heads import projection_head
from geoloc_core.models.inputs import AlignmentBatch
from geoloc_core.models.losses import (
    MAX_LOGIT_SCALE,
    LossOutput,
    multi_positive_info_nce,
    same_id_mask,
    same_place_mask,
)
from geoloc_core.models.segmentation_encoder import SegmentationEncoder
from geoloc_core.models.variants import (
    FROZEN,
    FUSED_GPS,
    IMAGE_GPS,
    IMAGE_TEXT,
    SEG_GPS,
    variant_spec,
)

# How each retrieval part of models/variants.BATCH_PARTS is computed (unit norm): from the cached
# backbone outputs alone, so every variant offers it.
BATCH_PARTS: dict[str, Callable[[AlignmentBatch], torch.Tensor]] = {
    FROZEN: lambda batch: F.normalize(batch.pooled, dim=-1),
}


# G3 declares a third logit scale (logit_scale3) that its loss never uses; a model with G3's
# text head keeps it under this name, so an imported g3.pth round-trips every tensor.
G3_THIRD_SCALE = "gps_text"


@dataclass(frozen=True)
class InputShapes:
    """Sizes fixed by the inputs (backbone and text tower), saved with the model."""

    pooled_dim: int
    token_dim: int
    tokens: int
    text_dim: int  # 0 when the variant has no text term


class GeoAlignmentModel(nn.Module):
    def __init__(self, config: ModelConfig, shapes: InputShapes, seed: int = 0):
        """Random initialisation from seed; GeoCLIP's GPS weights are loaded by the caller
        (init_gps_from_geoclip), so a model rebuilt from a checkpoint never needs the file."""
        super().__init__()
        self.config = config
        self.shapes = shapes
        self.spec = variant_spec(config.variant)
        torch.manual_seed(seed)
        if self.spec.uses_text and shapes.text_dim < 1:
            raise ValueError(f"variant {config.variant} needs caption embeddings (text_dim)")
        self.gps_encoder = GPSEncoder(
            config.gps_branch_dim or config.embed_dim,
            config.gps_sigmas,
            config.gps_fourier_features,
            config.gps_hidden,
            config.gps_layers,
            seed=seed,
            projection=config.gps_projection,
        )
        if config.gps_branch_dim is not None:  # G3: 512 -> 512 -> 768 after the summed branches
            branch = config.gps_branch_dim
            self.location_projection = projection_head(branch, branch, config.embed_dim)
        hidden = config.head_hidden
        if IMAGE_GPS in self.spec.embeddings:
            self.image_to_gps = projection_head(shapes.pooled_dim, hidden, config.embed_dim)
        if self.spec.uses_text:
            self.image_to_text = projection_head(shapes.pooled_dim, hidden, shapes.text_dim)
            if config.text_head:  # G3's text_projection_else
                self.text_head = projection_head(shapes.text_dim, hidden, shapes.text_dim)
        if self.spec.uses_segmentation:
            self._build_dual_view(config, shapes)
        init = math.log(1 / config.temperature_init)
        scales = list(self.spec.embeddings)
        if config.text_head:
            scales.append(G3_THIRD_SCALE)
        self.logit_scales = nn.ParameterDict(
            {name: nn.Parameter(torch.tensor(init)) for name in scales}
        )

    def _build_dual_view(self, config: ModelConfig, shapes: InputShapes) -> None:
        width = config.fusion_dim
        self.token_projection = nn.Linear(shapes.token_dim, width)
        self.token_positions = nn.Parameter(torch.zeros(1, shapes.tokens, width))
        nn.init.normal_(self.token_positions, std=0.02)
        self.seg_encoder = SegmentationEncoder(
            config.seg_grid, width, config.fusion_heads, config.seg_layers
        )
        self.fusion = nn.ModuleList(
            BidirectionalCrossAttention(width, config.fusion_heads)
            for _ in range(config.fusion_layers)
        )
        self.fused_to_gps = projection_head(2 * width, config.head_hidden, config.embed_dim)
        self.seg_to_gps = projection_head(width, config.head_hidden, config.embed_dim)

    def init_gps_from_geoclip(self, root: Path) -> None:
        """Load GeoCLIP's location-encoder weights named by model.gps_init (relative to root)."""
        if not self.config.gps_init:
            raise ValueError("model.gps_init is null: there are no GeoCLIP weights to load")
        load_geoclip_weights(
            self.gps_encoder,
            resolve_release_file(self.config.gps_init, LOCATION_ENCODER_FILE, Path(root)),
        )

    # --- embeddings -------------------------------------------------------------------------

    def embed(self, batch: AlignmentBatch) -> dict[str, torch.Tensor]:
        """Unit-norm embeddings of the variant, by name (models/variants.py)."""
        out: dict[str, torch.Tensor] = {}
        if IMAGE_GPS in self.spec.embeddings:
            out[IMAGE_GPS] = F.normalize(self.image_to_gps(batch.pooled), dim=-1)
        if IMAGE_TEXT in self.spec.embeddings:
            out[IMAGE_TEXT] = F.normalize(self.image_to_text(batch.pooled), dim=-1)
        if self.spec.uses_segmentation:
            fused, seg = self._dual_view(batch)
            out[FUSED_GPS] = F.normalize(self.fused_to_gps(fused), dim=-1)
            out[SEG_GPS] = F.normalize(self.seg_to_gps(seg), dim=-1)
        return out

    def _dual_view(self, batch: AlignmentBatch) -> tuple[torch.Tensor, torch.Tensor]:
        if batch.tokens is None or batch.label_maps is None:
            raise ValueError(
                f"variant {self.config.variant} needs patch tokens and segmentation label maps"
            )
        image = self.token_projection(batch.tokens) + self.token_positions
        seg = self.seg_encoder(batch.label_maps)
        seg_alone = seg.mean(dim=1)  # the pure semantic view, before it sees the pixels
        for block in self.fusion:
            image, seg = block(image, seg)[:2]
        fused = torch.cat([image.mean(dim=1), seg.mean(dim=1)], dim=-1)
        return fused, seg_alone

    def retrieval_embedding(
        self, batch: AlignmentBatch, parts: tuple[str, ...] | None = None
    ) -> torch.Tensor:
        """What the FAISS index holds and what a query is embedded as (unit norm): the named
        parts (default: the variant's, models/variants.py), each unit norm, concatenated."""
        names = parts or self.spec.retrieval
        computed = self.embed(batch)
        for name in names:
            if name in BATCH_PARTS:
                computed[name] = BATCH_PARTS[name](batch)
        missing = [name for name in names if name not in computed]
        if missing:
            raise ValueError(
                f"variant {self.config.variant} does not compute {missing}; "
                f"it offers {sorted(computed)}"
            )
        joined = torch.cat([computed[name] for name in names], dim=-1)
        return joined / math.sqrt(len(names))

    def gps_aligned_embedding(self, batch: AlignmentBatch) -> torch.Tensor:
        """The image's embedding in the GPS space (for G3's geo-verification)."""
        return self.embed(batch)[self.spec.gps_aligned]

    def encode_gps(self, latlon: torch.Tensor) -> torch.Tensor:
        """Unit GPS embeddings: the summed branches, then G3's location projection if any."""
        features = self.gps_encoder(latlon)
        if self.config.gps_branch_dim is not None:
            features = self.location_projection(features)
        return F.normalize(features, dim=-1)

    # --- training ---------------------------------------------------------------------------

    def temperatures(self) -> dict[str, float]:
        return {
            name: float(1 / scale.detach().exp().clamp(max=MAX_LOGIT_SCALE))
            for name, scale in self.logit_scales.items()
        }

    def loss(self, batch: AlignmentBatch, same_place_km: float) -> LossOutput:
        """Sum of symmetric multi-positive InfoNCE terms, one per embedding of the variant."""
        if batch.latlon is None:
            raise ValueError("training batches need coordinates")
        return self.contrastive_loss(
            self.embed(batch), self.encode_gps(batch.latlon), batch, same_place_km
        )

    def contrastive_loss(
        self,
        parts: dict[str, torch.Tensor],
        gps: torch.Tensor,
        batch: AlignmentBatch,
        same_place_km: float,
    ) -> LossOutput:
        """The loss of embeddings already computed: training on several processes computes
        them per process and calls this on the gathered global batch (training/distributed.py)."""
        place = same_place_mask(batch.latlon, same_place_km)
        terms: dict[str, torch.Tensor] = {}
        for name, embedding in parts.items():
            scale = self.logit_scales[name].exp().clamp(max=MAX_LOGIT_SCALE)
            if name == IMAGE_TEXT:
                if batch.text is None or batch.caption_ids is None:
                    raise ValueError(f"variant {self.config.variant} needs caption embeddings")
                text = batch.text
                if self.config.text_head:
                    text = F.normalize(self.text_head(text), dim=-1)
                logits = scale * embedding @ text.t()
                positives = same_id_mask(batch.caption_ids)
            else:
                logits = scale * embedding @ gps.t()
                positives = place
            terms[name] = multi_positive_info_nce(logits, positives)
        total = torch.stack(list(terms.values())).sum()
        return LossOutput(
            total, {k: float(v.detach()) for k, v in terms.items()}, self.temperatures()
        )
