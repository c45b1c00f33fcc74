"""A new photo embedded exactly as the cached images were: through the towers' own transform
(CLIP's preprocessing, data/clip_preprocess.py), the frozen tower's outputs rounded to the
feature cache's precision (fp16 unless features.precision is fp32), and, for the dual-view
variants, its ADE20K label map.

That map comes from the segmentation cache when the file is an image of the project's
manifests, else from the configured segmentation model. The `demo` segmentation provider only
knows the demo world's own label maps, so a dual-view model refuses other photos with the fix,
rather than answering without its segmentation view.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geoloc_core.data.clip_preprocess import ImageTransform
from geoloc_core.data.manifest import read_manifest
from geoloc_core.encoders.backbone import FeatureSpec, backbone_outputs
from geoloc_core.encoders.clip_towers import (
    ClipTowers,
    TowerSpec,
    architecture_transform,
    build_towers,
    freeze,
)
from geoloc_core.encoders.vit_tower import PlainVisionTower, VisionOnly, plain_vision_tower
from geoloc_core.models.inputs import AlignmentBatch
from geoloc_core.models.persistence import TrainedModel
from geoloc_core.paths import ProjectPaths
from geoloc_core.predict.files import TAG_PREFIX

BATCH_SIZE = 64
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhotoEmbeddings:
    retrieval: np.ndarray  # (n, D) unit vectors of the index's parts
    gps_aligned: np.ndarray  # (n, d) unit vectors in the GPS space (geo-verification)


def decode_photo(data: bytes, transform: ImageTransform) -> np.ndarray:
    """RGB uint8 (size, size, 3), upright as EXIF says: the same transform as the caches'."""
    return transform.decode(data)


def frozen_towers(spec: FeatureSpec, weights: Path | None) -> ClipTowers:
    """The frozen towers the model was trained on. weights: the file to load (checked against
    the digest the model recorded, unless it names an open_clip tag, whose weights a bundle
    exports to a file; a transformers checkpoint is a directory); None: the tag itself, which
    open_clip (or the hub) resolves. Built lean: a predict process builds no other towers, so
    open_clip loads without what these do not use. An open_clip ViT from a weights file is
    rebuilt without open_clip (vit_tower.py: the same outputs, seconds less to start), with
    the transform open_clip gives a weights file (clip_towers.architecture_transform, as
    build_clip gives it: its defaults at the tower's size, the stand-in's per-image step)."""
    from geoloc_core.training.backbone_weights import weights_digest

    if weights is None:
        tag = TowerSpec(spec.architecture, str(spec.pretrained), spec.implementation)
        return freeze(build_towers(tag, lean=True))
    local = TowerSpec(spec.architecture, str(weights), spec.implementation)
    if not Path(weights).exists():
        raise FileNotFoundError(f"the backbone weights {weights} are missing")
    expected = str(spec.weights_sha256)
    if not expected.startswith(TAG_PREFIX) and weights_digest(local) != expected:
        raise ValueError(
            f"{weights} is not the backbone the model was trained on (its SHA-256 differs): "
            "re-materialize backbone_weights and everything downstream"
        )
    if spec.implementation == "open_clip":
        plain = plain_vision_tower(spec.architecture, Path(weights))
        if isinstance(plain, PlainVisionTower):
            return ClipTowers(
                VisionOnly(plain),
                _no_text_tower,
                plain.output_dim,
                architecture_transform(spec.architecture, {}, plain.image_size[0]),
            )
        log.debug("building the towers with open_clip: %s", plain)
    return freeze(build_towers(local, lean=True))


def _no_text_tower(texts: list[str]) -> torch.Tensor:
    raise RuntimeError("these towers embed photos only; build_towers gives the text tower as well")


def cache_rounding(precision: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """What the feature cache does to a tower output (fp16: rounds it), in float32."""
    if precision == "fp16":
        return lambda x: x.half().float()
    if precision == "fp32":
        return lambda x: x.float()
    raise ValueError(f"feature precision {precision!r}: expected fp16 or fp32")


@torch.no_grad()
def embed_photos(
    trained: TrainedModel,
    towers: ClipTowers,
    images: np.ndarray,
    label_maps: np.ndarray | None,
    parts: tuple[str, ...] | None = None,
) -> PhotoEmbeddings:
    """Retrieval embeddings (of parts, default the variant's) and GPS-aligned embeddings of
    decoded images (B, H, W, 3), in one pass through the frozen tower and the heads."""
    retrieval, aligned = [], []
    as_cached = cache_rounding(trained.features.precision)
    for start in range(0, len(images), BATCH_SIZE):
        pixels = towers.transform.normalize(images[start : start + BATCH_SIZE])
        outputs = backbone_outputs(towers.model.visual, pixels, trained.features.token_grid)
        maps = None
        if label_maps is not None:
            maps = torch.from_numpy(label_maps[start : start + BATCH_SIZE].astype(np.int64))
        batch = AlignmentBatch(
            pooled=as_cached(outputs.pooled),
            tokens=as_cached(outputs.tokens),
            label_maps=maps,
        )
        retrieval.append(trained.model.retrieval_embedding(batch, parts).float().numpy())
        aligned.append(trained.model.gps_aligned_embedding(batch).float().numpy())
    return PhotoEmbeddings(
        np.concatenate(retrieval).astype(np.float32), np.concatenate(aligned).astype(np.float32)
    )


def manifest_ids_by_image(paths: ProjectPaths) -> dict[Path, str]:
    """Resolved image path -> id, over the reference and benchmark manifests present."""
    files = [paths.reference_manifest, *sorted((paths.manifests / "benchmarks").glob("*.csv"))]
    found: dict[Path, str] = {}
    for file in files:
        if file.is_file():
            table = read_manifest(file)
            for image_id, image in zip(table["id"], table["image"], strict=True):
                found[(paths.root / image).resolve()] = str(image_id)
    return found


class PhotoSegmenter:
    """Label maps of photos for the dual-view variants: the project's segmentation cache for
    its own images, else the configured segmentation model."""

    def __init__(
        self,
        project: ProjectPaths | None,
        segmentation_section: Mapping[str, Any],
        variant: str,
    ) -> None:
        self.project = project
        self.section = dict(segmentation_section)
        self.variant = variant
        self._known = manifest_ids_by_image(project) if project is not None else {}

    def segment(
        self, names: Sequence[str], files: Sequence[Path | None], data: Sequence[bytes]
    ) -> tuple[np.ndarray, dict[int, str]]:
        """(label maps in order, {row: why a photo has none}); a photo without a file (sent as
        bytes) is segmented from a temporary copy."""
        rows = range(len(names))
        cached: dict[int, str] = {}
        for row, file in enumerate(files):
            if file is not None and file.resolve() in self._known:
                cached[row] = self._known[file.resolve()]
        unknown = [r for r in rows if r not in cached]
        maps: dict[int, np.ndarray] = {}
        failures: dict[int, str] = {}
        if cached:
            from geoloc_core.training.project_inputs import segmentation_source

            found, _ = segmentation_source(self.project).load([cached[r] for r in cached])
            maps.update(zip(cached, found, strict=True))
        if unknown:
            computed, failed = self._with_provider(
                [names[r] for r in unknown], [files[r] for r in unknown], [data[r] for r in unknown]
            )
            for local, row in enumerate(unknown):
                if local in failed:
                    failures[row] = failed[local]
                else:
                    maps[row] = computed[local]
        size = next(iter(maps.values())).shape if maps else (1, 1)
        stacked = np.stack([maps.get(row, np.zeros(size, np.uint8)) for row in rows])
        return stacked, failures

    def _with_provider(
        self, names: Sequence[str], files: Sequence[Path | None], data: Sequence[bytes]
    ) -> tuple[list[np.ndarray], dict[int, str]]:
        """Label maps of new photos from params segmentation's model, post-processed as the
        cache's."""
        from geoloc_core.segmentation.providers import make_provider
        from geoloc_core.segmentation.providers.base import WorkItem
        from geoloc_core.segmentation.settings import SegmentationSettings
        from geoloc_core.segmentation.shard import compute_batch

        settings = SegmentationSettings.from_section(self.section)
        if settings.provider == "demo":
            shown = ", ".join(names[:3])
            raise ValueError(
                f"the {self.variant} model needs the segmentation of {shown}"
                f"{' …' if len(names) > 3 else ''}, which is in no manifest of the project, and "
                "segmentation.provider 'demo' only has the demo world's own label maps. Set "
                "segmentation.provider to segformer or mask2former (a transformers ADE20K "
                "checkpoint) to segment new photos, or predict with a g3 or image-only model"
            )
        root = self.project.root if self.project is not None else Path.cwd()
        with tempfile.TemporaryDirectory(prefix="geoloc-segment-") as scratch:
            items = []
            for i, (file, blob) in enumerate(zip(files, data, strict=True)):
                if file is None:
                    file = Path(scratch) / f"photo-{i}"
                    file.write_bytes(blob)
                items.append(WorkItem(id=str(i), image=Path(file)))
            rows = compute_batch(make_provider(settings), items, settings, root)
        by_id = dict(zip(rows.ids, rows.label_maps, strict=True))
        failed = {int(f.id): f"segmentation failed: {f.reason}" for f in rows.failures}
        maps = [by_id.get(str(i), np.zeros((1, 1), np.uint8)) for i in range(len(names))]
        return maps, failed
