"""Which rows of each feature shard a split trains on, found without holding the data set.

train.order: shards reads the features shard by shard (shard_stream.py). What it keeps per
sample is fixed-size numbers only: the row in its feature shard (int32), lat/lon (2 x float64)
and the caption's row (int32), 16-24 bytes, no id strings. Finding them joins the manifest
and the place texts with the shards' ids; both files are read in chunks and each chunk's rows
are routed to a per-shard scratch file, which is then joined with that one shard's ids, so the
join too holds one chunk and one shard at a time, never the whole reference set.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from geoloc_core.segmentation.sharding import shard_of
from geoloc_core.training.feature_cache import FeatureCache

CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class ShardPart:
    """The samples of one feature shard, in the shard's row order."""

    shard: int
    rows: np.ndarray  # (n,) int32 rows in the feature shard, ascending
    latlon: np.ndarray  # (n, 2) float64 degrees
    caption: np.ndarray | None = None  # (n,) int32 row among the distinct captions

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class ShardPlan:
    parts: list[ShardPart]
    captions: list[str] | None  # distinct captions, sorted (caption rows index them)
    dropped: int  # rows of the split without features (or segmentation)
    validation: pd.DataFrame  # id, lat, lon of the split's held-out rows that have inputs


def _chunks(path: Path, columns: list[str]) -> Iterator[pd.DataFrame]:
    text = {c: str for c in columns if c not in ("lat", "lon")}
    numbers = {c: [""] for c in columns if c in ("lat", "lon")}
    yield from pd.read_csv(
        path,
        usecols=columns,
        dtype=text,
        keep_default_na=False,
        na_values=numbers,
        chunksize=CHUNK_ROWS,
    )


def _route(frame: pd.DataFrame, n_shards: int, folder: Path, kind: str) -> None:
    """Append frame's rows to folder/<kind>-<shard>.csv, by the shard of their id."""
    shard = np.fromiter((shard_of(i, n_shards) for i in frame["id"]), np.int64, len(frame))
    for index, rows in frame.groupby(shard, sort=False):
        file = folder / f"{kind}-{index:05d}.csv"
        rows.to_csv(file, mode="a", header=not file.exists(), index=False)


def _routed(folder: Path, kind: str, index: int, columns: list[str]) -> pd.DataFrame:
    file = folder / f"{kind}-{index:05d}.csv"
    if not file.exists():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.read_csv(
        file,
        dtype={c: str for c in columns if c not in ("lat", "lon")},
        keep_default_na=False,
        na_values={c: [""] for c in columns if c in ("lat", "lon")},
    )


def plan_shards(
    features: FeatureCache,
    manifest: Path,
    split: str,
    held_out: str,
    excluded: set[str] | frozenset[str] = frozenset(),
    place_texts: Path | None = None,
    scratch: Path | None = None,
) -> ShardPlan:
    """The split's samples per feature shard (ids in excluded, e.g. images whose segmentation
    failed, left out); held_out's rows with inputs as a small table for validation."""
    n_shards = features.n_shards
    with tempfile.TemporaryDirectory(prefix="shard-plan-", dir=scratch) as tmp:
        folder = Path(tmp)
        held: list[pd.DataFrame] = []
        for chunk in _chunks(manifest, ["id", "lat", "lon", "split"]):
            _route(chunk[chunk["split"] == split][["id", "lat", "lon"]], n_shards, folder, "m")
            held.append(chunk[chunk["split"] == held_out][["id", "lat", "lon"]])
        if place_texts is not None:
            if not Path(place_texts).is_file():
                raise FileNotFoundError(
                    f"{place_texts} is missing: materialize the place_texts asset first"
                )
            for chunk in _chunks(place_texts, ["id", "caption"]):
                _route(chunk, n_shards, folder, "t")
        parts, dropped = [], 0
        number: dict[str, int] = {}  # distinct caption -> its code, in the order first seen
        for index in range(n_shards):
            rows = _routed(folder, "m", index, ["id", "lat", "lon"])
            wanted = rows["id"].to_numpy(str)
            ids = features.shard_ids(index)
            at = np.searchsorted(ids, wanted) if len(ids) else np.zeros(len(rows), np.int64)
            found = np.zeros(len(rows), bool)
            inside = at < len(ids)
            found[inside] = ids[at[inside]] == wanted[inside]
            if excluded:
                found &= ~rows["id"].isin(excluded).to_numpy()
            dropped += int((~found).sum())
            keep = rows[found].assign(row=at[found]).sort_values("row", kind="stable")
            codes = None
            if place_texts is not None:
                texts = _routed(folder, "t", index, ["id", "caption"])
                captions = _captions_of(keep["id"], texts)
                codes = np.fromiter(
                    (number.setdefault(c, len(number)) for c in captions), np.int32, len(captions)
                )
            parts.append(
                ShardPart(
                    index,
                    keep["row"].to_numpy(np.int32),
                    keep[["lat", "lon"]].to_numpy(np.float64),
                    codes,
                )
            )
        validation = _with_features(pd.concat(held, ignore_index=True), features, excluded)
    distinct = None
    if place_texts is not None:  # number the captions in sorted order, as captions.py does
        first_seen = list(number)
        order = np.argsort(np.asarray(first_seen, dtype=str), kind="stable")
        renumber = np.empty(len(order), np.int32)
        renumber[order] = np.arange(len(order), dtype=np.int32)
        distinct = [first_seen[k] for k in order]
        parts = [
            ShardPart(p.shard, p.rows, p.latlon, renumber[p.caption] if len(p) else p.caption)
            for p in parts
        ]
    return ShardPlan([p for p in parts if len(p)], distinct, dropped, validation)


def _captions_of(ids: pd.Series, texts: pd.DataFrame) -> list[str]:
    """Each id's caption; ValueError naming ids without one (as captions.captions_for)."""
    by_id = dict(zip(texts["id"], texts["caption"], strict=True))
    missing = [i for i in ids if not by_id.get(i)]
    if missing:
        raise ValueError(
            f"{len(missing)} images have no caption in the place texts, e.g. {missing[:3]}: "
            "re-materialize place_texts after reference_manifest"
        )
    return [by_id[i] for i in ids]


def _with_features(rows: pd.DataFrame, features: FeatureCache, excluded) -> pd.DataFrame:
    """rows whose ids have features (checked shard by shard) and are not excluded."""
    if rows.empty:
        return rows.reset_index(drop=True)
    shard = np.fromiter((shard_of(i, features.n_shards) for i in rows["id"]), np.int64, len(rows))
    keep = np.zeros(len(rows), bool)
    for index in np.unique(shard):
        mine = shard == index
        keep[mine] = np.isin(rows["id"].to_numpy(str)[mine], features.shard_ids(int(index)))
    if excluded:
        keep &= ~rows["id"].isin(excluded).to_numpy()
    return rows[keep].reset_index(drop=True)
