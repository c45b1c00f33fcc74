"""The demo's backbone: its small open_clip model pretrained once, CLIP-style, then frozen.

The demo cannot download CLIP, and a ViT trained from scratch per variant is slow and weak on
two CPU cores. Both papers start from a frozen, contrastively pretrained CLIP, so the demo does
the same in miniature: image-caption InfoNCE on the reference split's images and place
captions, validated by caption retrieval on the validation split. The weights are then written
to a file that every later step loads through the same open_clip call as `openai` weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from geoloc_core.data.clip_preprocess import ImageTransform
from geoloc_core.encoders.clip_towers import ClipTowers
from geoloc_core.models.losses import (
    MAX_LOGIT_SCALE,
    LossOutput,
    multi_positive_info_nce,
    same_id_mask,
)
from geoloc_core.paths import ProjectPaths
from geoloc_core.training.captions import caption_index, captions_for

MAX_PRETRAIN_IMAGES = 200_000  # the images are decoded into memory once


@dataclass(frozen=True)
class CaptionBatch:
    pixels: torch.Tensor  # (B, 3, H, W)
    tokens: torch.Tensor  # (B, context) caption token ids
    caption_ids: torch.Tensor  # (B,) equal ids = equal captions


@dataclass
class CaptionedImages:
    """Decoded images with the row of their caption among the distinct captions."""

    images: np.ndarray  # (N, H, W, 3) uint8
    caption_index: np.ndarray  # (N,)
    caption_tokens: torch.Tensor  # (U, context)
    transform: ImageTransform  # the towers' own (normalises the decoded images)

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, positions: np.ndarray) -> CaptionBatch:
        captions = torch.from_numpy(self.caption_index[positions])
        return CaptionBatch(
            self.transform.normalize(self.images[positions]),
            self.caption_tokens[captions],
            captions,
        )


def clip_loss(towers: ClipTowers, batch: CaptionBatch) -> LossOutput:
    """CLIP's symmetric InfoNCE; images sharing a caption are each other's positives."""
    model = towers.model
    image = model.encode_image(batch.pixels, normalize=True)
    text = model.encode_text(batch.tokens, normalize=True)
    scale = model.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)
    loss = multi_positive_info_nce(scale * image @ text.t(), same_id_mask(batch.caption_ids))
    temperature = float(1 / scale.detach())
    return LossOutput(loss, {"image_text": float(loss.detach())}, {"image_text": temperature})


@torch.no_grad()
def caption_top1(towers: ClipTowers, data: CaptionedImages, batch_size: int = 256) -> float:
    """Share of images whose most similar distinct caption is their own (validation)."""
    model = towers.model
    was_training = model.training
    model.eval()
    texts = torch.cat(
        [
            model.encode_text(data.caption_tokens[s : s + batch_size], normalize=True)
            for s in range(0, len(data.caption_tokens), batch_size)
        ]
    )
    hits = 0
    for start in range(0, len(data), batch_size):
        positions = np.arange(start, min(start + batch_size, len(data)))
        batch = data.batch(positions)
        image = model.encode_image(batch.pixels, normalize=True)
        hits += int(((image @ texts.t()).argmax(dim=1) == batch.caption_ids).sum())
    model.train(was_training)
    return 100.0 * hits / max(len(data), 1)


def captioned_split(
    root: Path, manifest: pd.DataFrame, split: str, towers: ClipTowers
) -> tuple[CaptionedImages, int]:
    """A split's decodable images with their captions; (data, how many images failed)."""
    rows = manifest[manifest["split"] == split].reset_index(drop=True)
    if len(rows) > MAX_PRETRAIN_IMAGES:
        raise ValueError(
            f"{len(rows)} {split} images: pretraining the backbone here is meant for the demo "
            "world; at MP16 scale set backbone.pretrained to open_clip weights (openai)"
        )
    images, positions, failures = towers.transform.load_batch(
        rows["id"].tolist(), [Path(root) / p for p in rows["image"]]
    )
    ids = rows["id"].iloc[positions].tolist()
    distinct, index = caption_index(captions_for(ProjectPaths(Path(root)).place_texts, ids))
    data = CaptionedImages(images, index, towers.tokenizer(distinct), towers.transform)
    return data, len(failures)
