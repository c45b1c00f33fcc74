"""Geolocate arbitrary image files with the trained model and index (the `geoloc predict` path).

A file goes through the same steps as a cached image: decoded at the backbone's size, the frozen
tower's outputs rounded to fp16 (as the cache stores them), and, for the dual-view variants, its
ADE20K label map. That map comes from the segmentation cache when the file is an image of the
project's manifests, else from the configured segmentation model. The `demo` segmentation
provider only knows the demo world's own label maps, so a dual-view model refuses other files
with the fix, rather than answering without its segmentation view.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geoloc_core.data.images import load_batch, normalize_pixels
from geoloc_core.data.manifest import read_manifest
from geoloc_core.encoders.backbone import backbone_outputs
from geoloc_core.encoders.clip_towers import freeze
from geoloc_core.models.inputs import AlignmentBatch
from geoloc_core.models.persistence import TrainedModel
from geoloc_core.params import load_params
from geoloc_core.paths import ProjectPaths
from geoloc_core.retrieval.index import load_index
from geoloc_core.retrieval.predict import predict_nearest
from geoloc_core.steps.indexing import index_record
from geoloc_core.steps.training import load_trained
from geoloc_core.training.backbone_weights import BackboneRecord, load_towers
from geoloc_core.training.project_inputs import segmentation_source

BATCH_SIZE = 64


def predict_images(root: Path, images: Sequence[Path], top_k: int = 5) -> list[dict[str, Any]]:
    """One result per input, in order; an unreadable file gets an error entry, not an exception."""
    paths = ProjectPaths(root)
    trained = load_trained(paths)
    index = load_index(paths.index_file)
    meta = read_manifest(paths.index_meta)
    ids = [str(p) for p in images]
    stack, positions, failures = load_batch(ids, list(images), trained.image_size)
    results: list[dict[str, Any]] = [{"image": i} for i in ids]
    for failure in failures:
        results[ids.index(failure.id)]["error"] = failure.reason
    if not positions:
        return results
    label_maps = None
    if trained.model.spec.uses_segmentation:
        files = [Path(images[p]) for p in positions]
        label_maps, seg_failures = segment_files(paths, files, trained.model.config.variant)
        for row, reason in seg_failures.items():
            results[positions[row]]["error"] = reason
        good = [row for row in range(len(positions)) if row not in seg_failures]
        stack, positions = stack[good], [positions[row] for row in good]
        label_maps = label_maps[good]
        if not positions:
            return results
    parts = tuple(index_record(paths)["parts"])
    queries = embed_files(paths, trained, stack, label_maps, parts)
    predicted = predict_nearest(index, meta[["lat", "lon"]].to_numpy(np.float64), queries, top_k)
    for row, position in enumerate(positions):
        results[position].update(
            lat=float(predicted.lat[row]),
            lon=float(predicted.lon[row]),
            score=float(predicted.scores[row, 0]),
            neighbours=meta["id"].to_numpy()[predicted.neighbour_positions[row]].tolist(),
        )
    return results


@torch.no_grad()
def embed_files(
    paths: ProjectPaths,
    trained: TrainedModel,
    images: np.ndarray,
    label_maps: np.ndarray | None,
    parts: tuple[str, ...] | None = None,
) -> np.ndarray:
    """Retrieval embeddings (of parts, default the variant's) of decoded images, via the
    frozen towers the model was trained on."""
    spec = trained.features
    record = BackboneRecord(spec.architecture, str(spec.pretrained), spec.weights_sha256)
    towers = freeze(load_towers(paths.root, record))
    chunks = []
    for start in range(0, len(images), BATCH_SIZE):
        pixels = normalize_pixels(images[start : start + BATCH_SIZE], towers.mean, towers.std)
        outputs = backbone_outputs(towers.model.visual, pixels, spec.token_grid)
        maps = None
        if label_maps is not None:
            maps = torch.from_numpy(label_maps[start : start + BATCH_SIZE].astype(np.int64))
        batch = AlignmentBatch(
            pooled=outputs.pooled.half().float(),  # the cache's fp16 rounding
            tokens=outputs.tokens.half().float(),
            label_maps=maps,
        )
        chunks.append(trained.model.retrieval_embedding(batch, parts).numpy())
    return np.concatenate(chunks).astype(np.float32)


def segment_files(
    paths: ProjectPaths, files: Sequence[Path], variant: str
) -> tuple[np.ndarray, dict[int, str]]:
    """(label maps in order, {row: why a file has none}); cached maps first, else the provider."""
    known = manifest_ids_by_image(paths)
    cached = {row: known[f.resolve()] for row, f in enumerate(files) if f.resolve() in known}
    unknown = [row for row in range(len(files)) if row not in cached]
    maps: dict[int, np.ndarray] = {}
    failures: dict[int, str] = {}
    if cached:
        rows = list(cached)
        found, _ = segmentation_source(paths).load([cached[r] for r in rows])
        maps.update(zip(rows, found, strict=True))
    if unknown:
        computed, failed = _segment_with_provider(paths, [files[r] for r in unknown], variant)
        for local, row in enumerate(unknown):
            if local in failed:
                failures[row] = failed[local]
            else:
                maps[row] = computed[local]
    size = next(iter(maps.values())).shape if maps else (1, 1)
    stacked = np.stack([maps.get(row, np.zeros(size, np.uint8)) for row in range(len(files))])
    return stacked, failures


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


def _segment_with_provider(
    paths: ProjectPaths, files: Sequence[Path], variant: str
) -> tuple[list[np.ndarray], dict[int, str]]:
    """Label maps of new files from params segmentation's model, post-processed as the cache."""
    from geoloc_core.segmentation.providers import make_provider
    from geoloc_core.segmentation.providers.base import WorkItem
    from geoloc_core.segmentation.settings import SegmentationSettings
    from geoloc_core.segmentation.shard import compute_batch

    settings = SegmentationSettings.from_section(load_params(paths.root)["segmentation"])
    if settings.provider == "demo":
        names = ", ".join(str(f) for f in files[:3])
        raise ValueError(
            f"the {variant} model needs the segmentation of {names}"
            f"{' …' if len(files) > 3 else ''}, which is in no manifest of the project, and "
            "segmentation.provider 'demo' only has the demo world's own label maps. Set "
            "segmentation.provider to segformer or mask2former (a transformers ADE20K "
            "checkpoint) to segment new photos, or predict with a g3 or image-only model"
        )
    items = [WorkItem(id=str(i), image=Path(f)) for i, f in enumerate(files)]
    rows = compute_batch(make_provider(settings), items, settings, paths.root)
    by_id = dict(zip(rows.ids, rows.label_maps, strict=True))
    failed = {int(f.id): f"segmentation failed: {f.reason}" for f in rows.failures}
    maps = [by_id.get(str(i), np.zeros((1, 1), np.uint8)) for i in range(len(files))]
    return maps, failed
