"""What a model reads from the project: the backbone-features cache, the segmentation cache
(issue 4), and which manifest rows have both; plus a fingerprint of those inputs, so a
checkpoint made from other inputs is never resumed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
import pandas as pd

from geoloc_core.file_hash import file_sha256
from geoloc_core.models.inputs import FeatureSource, SegmentationSource
from geoloc_core.models.persistence import TrainedModel
from geoloc_core.paths import ProjectPaths
from geoloc_core.training.dataset import AlignmentData
from geoloc_core.training.feature_cache import FeatureCache

SEPARATOR = "\x1f"  # file_hash.digest's


def segmentation_source(paths: ProjectPaths) -> SegmentationSource:
    """The project's segmentation cache, imported only by the variants that need it."""
    from geoloc_core.segmentation.cache import SegmentationCache

    return SegmentationCache(paths.segmentation_dir)


def split_data(
    manifest: pd.DataFrame,
    split: str,
    features: FeatureSource,
    segmentation: SegmentationSource | None,
    available: set[str],
) -> tuple[AlignmentData, int]:
    """The split's rows that have every input; (data, how many rows lacked one)."""
    rows = manifest[manifest["split"] == split]
    keep = rows[rows["id"].isin(available)].reset_index(drop=True)
    latlon = keep[["lat", "lon"]].to_numpy(np.float64)
    data = AlignmentData(keep["id"].tolist(), features, segmentation, latlon)
    return data, len(rows) - len(keep)


def inputs_fingerprint(paths: ProjectPaths, uses_text: bool) -> str:
    """The training inputs' identity: manifest, feature shards, segmentation shards, captions.

    file_hash.digest of the parts, hashed one part at a time: each shard's meta.json lists its
    ids, so holding them all at once would grow with the data."""
    return _streamed_digest(_input_parts(paths, uses_text))


def _input_parts(paths: ProjectPaths, uses_text: bool) -> Iterator[str]:
    yield file_sha256(paths.reference_manifest)
    for meta in sorted(paths.features_dir.glob("shard-*/meta.json")):
        yield meta.read_text()
    segmentation = paths.segmentation_dir
    if segmentation.is_dir():
        for file in sorted(segmentation.glob("shard-*.npz")):
            stat = file.stat()
            yield f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}"
    if uses_text:
        yield file_sha256(paths.place_texts)


def _streamed_digest(parts: Iterator[str]) -> str:
    """digest(*parts) without joining them first (the same value)."""
    hashed = hashlib.sha256()
    for k, part in enumerate(parts):
        hashed.update((SEPARATOR if k else "").encode() + str(part).encode())
    return hashed.hexdigest()[:16]


def model_inputs(
    paths: ProjectPaths, trained: TrainedModel
) -> tuple[FeatureCache, SegmentationSource | None]:
    """The caches a trained model reads, checked to hold what it was trained on."""
    features = FeatureCache(paths.features_dir)
    if features.spec() != trained.features:
        raise ValueError(
            f"the backbone features in {features.directory} were made by {features.spec()}, "
            f"the model was trained on {trained.features}: re-materialize alignment_model"
        )
    uses_segmentation = trained.model.spec.uses_segmentation
    return features, segmentation_source(paths) if uses_segmentation else None


def rows_with_inputs(
    rows: pd.DataFrame, features: FeatureCache, segmentation: SegmentationSource | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows whose features and segmentation are cached, the others with the reason)."""
    have_features = set(features.ids())
    have_segmentation = set(segmentation.ids()) if segmentation is not None else None
    reasons = []
    for image_id in rows["id"]:
        if image_id not in have_features:
            reasons.append("no backbone features (its image failed to decode)")
        elif have_segmentation is not None and image_id not in have_segmentation:
            reasons.append("no segmentation (its image failed to segment)")
        else:
            reasons.append("")
    why = pd.Series(reasons, index=rows.index)
    lacking = why != ""
    missing = pd.DataFrame({"id": rows["id"][lacking], "reason": why[lacking]})
    return rows[~lacking].reset_index(drop=True), missing.reset_index(drop=True)
