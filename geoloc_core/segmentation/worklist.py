"""Which images one shard must cover: the reference manifest (reference + validation splits) and
the manifests of the configured benchmarks (DualGeo needs a query's segmentation at test time),
filtered to the shard by id hash and sorted by id, so the order never depends on the manifests'."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from geoloc_core.paths import ProjectPaths
from geoloc_core.segmentation.errors import SegmentationError
from geoloc_core.segmentation.providers.base import WorkItem
from geoloc_core.segmentation.sharding import shard_of

COLUMNS = ("id", "image", "label")


def manifest_files(paths: ProjectPaths, benchmarks: Sequence[str]) -> list[tuple[Path, str]]:
    """(file, the asset that writes it) for every manifest the cache covers."""
    files = [(paths.reference_manifest, "reference_manifest")]
    files += [(paths.benchmark_manifest(b), f"benchmark_manifest[{b}]") for b in benchmarks]
    return files


def read_rows(paths: ProjectPaths, benchmarks: Sequence[str]) -> pd.DataFrame:
    """id, image, label (label empty where absent) of every manifest; one row per id."""
    frames = []
    for file, asset in manifest_files(paths, benchmarks):
        if not file.is_file():
            raise SegmentationError(
                f"{file} is missing: materialize {asset} before segmentation_cache"
            )
        frame = pd.read_csv(file, dtype=str, keep_default_na=False, usecols=lambda c: c in COLUMNS)
        missing = [c for c in ("id", "image") if c not in frame.columns]
        if missing:
            raise SegmentationError(f"{file} has no column(s) {missing}: re-materialize {asset}")
        if "label" not in frame.columns:
            frame["label"] = ""
        frames.append(frame.assign(manifest=file.name))
    rows = pd.concat(frames, ignore_index=True)
    duplicated = rows[rows["id"].duplicated(keep=False)]
    clashing = duplicated.groupby("id")["image"].nunique()
    if (clashing > 1).any():
        image_id = clashing[clashing > 1].index[0]
        where = duplicated[duplicated["id"] == image_id]
        raise SegmentationError(
            f"image id {image_id!r} names different images in "
            f"{sorted(set(where['manifest']))}: {sorted(set(where['image']))}; "
            "ids must be unique across the reference and benchmark manifests"
        )
    return rows.drop_duplicates("id").drop(columns="manifest").reset_index(drop=True)


def shard_items(
    paths: ProjectPaths, benchmarks: Sequence[str], n_shards: int, shard: int
) -> list[WorkItem]:
    rows = read_rows(paths, benchmarks)
    mine = rows[[shard_of(image_id, n_shards) == shard for image_id in rows["id"]]]
    items = [
        WorkItem(
            id=row.id,
            image=paths.root / row.image,
            label=(paths.root / row.label) if row.label else None,
        )
        for row in mine.itertuples(index=False)
    ]
    return sorted(items, key=lambda item: item.id)
