"""Which rows of each feature shard a split trains on, found without holding the data set.

train.order: shards reads the features shard by shard (shard_stream.py). What it keeps per
sample is fixed-size numbers only: the row in its feature shard (int32), lat/lon (2 x float64)
and the caption's row (int32), 16-24 bytes, no id strings. Finding them joins the manifest
and the place texts with the shards' ids (for the training split and the held-out one, whose
parts the validation streams the same way); both files are read in chunks and each chunk's rows
are routed to a per-shard scratch file, which is then joined with that one shard's ids, so the
join too holds one chunk and one shard at a time, never the whole reference set.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Set
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

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
    parts: list[ShardPart]  # the split's samples, one part per feature shard that has some
    captions: list[str] | None  # distinct captions, sorted (caption rows index them)
    validation: list[ShardPart]  # the held-out split's samples (no captions)
    dropped: int  # rows of either split without features (or excluded)


def _read(path: Path, columns: list[str], chunksize: int | None = None) -> Any:
    """A manifest-like CSV as read_manifest reads it (text stays text, "" is no number)."""
    return pd.read_csv(
        path,
        usecols=columns,
        dtype={c: str for c in columns if c not in ("lat", "lon")},
        keep_default_na=False,
        na_values={c: [""] for c in columns if c in ("lat", "lon")},
        chunksize=chunksize,
    )


def _chunks(path: Path, columns: list[str]) -> Iterator[pd.DataFrame]:
    yield from _read(path, columns, CHUNK_ROWS)


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
    return _read(file, columns)


def _join(rows: pd.DataFrame, ids: np.ndarray, excluded: Set[str]) -> tuple[pd.DataFrame, int]:
    """rows found among the shard's sorted ids and not excluded, with their row, in row order;
    and how many were not."""
    wanted = rows["id"].to_numpy(str)
    at = np.searchsorted(ids, wanted) if len(ids) else np.zeros(len(rows), np.int64)
    found = np.zeros(len(rows), bool)
    inside = at < len(ids)
    found[inside] = ids[at[inside]] == wanted[inside]
    if excluded:
        found &= ~rows["id"].isin(excluded).to_numpy()
    keep = rows[found].assign(row=at[found]).sort_values("row", kind="stable")
    return keep, int((~found).sum())


def _part(index: int, keep: pd.DataFrame, caption: np.ndarray | None = None) -> ShardPart:
    return ShardPart(
        index, keep["row"].to_numpy(np.int32), keep[["lat", "lon"]].to_numpy(np.float64), caption
    )


def plan_shards(
    features: FeatureCache,
    manifest: Path,
    split: str,
    held_out: str,
    excluded: Set[str] = frozenset(),
    place_texts: Path | None = None,
    scratch: Path | None = None,
) -> ShardPlan:
    """The samples of split and of held_out per feature shard (ids in excluded, e.g. images
    whose segmentation failed, left out); captions for split's samples from place_texts."""
    n_shards = features.n_shards
    columns = ["id", "lat", "lon"]
    with tempfile.TemporaryDirectory(prefix="shard-plan-", dir=scratch) as tmp:
        folder = Path(tmp)
        for chunk in _chunks(manifest, [*columns, "split"]):
            _route(chunk[chunk["split"] == split][columns], n_shards, folder, "m")
            _route(chunk[chunk["split"] == held_out][columns], n_shards, folder, "v")
        if place_texts is not None:
            if not Path(place_texts).is_file():
                raise FileNotFoundError(
                    f"{place_texts} is missing: materialize the place_texts asset first"
                )
            for chunk in _chunks(place_texts, ["id", "caption"]):
                _route(chunk, n_shards, folder, "t")
        parts, validation, dropped = [], [], 0
        number: dict[str, int] = {}  # distinct caption -> its code, in the order first seen
        for index in range(n_shards):
            ids = features.shard_ids(index)
            keep, missing = _join(_routed(folder, "m", index, columns), ids, excluded)
            held, held_missing = _join(_routed(folder, "v", index, columns), ids, excluded)
            dropped += missing + held_missing
            codes = None
            if place_texts is not None:
                texts = _routed(folder, "t", index, ["id", "caption"])
                captions = _captions_of(keep["id"], texts)
                codes = np.fromiter(
                    (number.setdefault(c, len(number)) for c in captions), np.int32, len(captions)
                )
            parts.append(_part(index, keep, codes))
            validation.append(_part(index, held))
    distinct = None
    if place_texts is not None:  # number the captions in sorted order, as captions.py does
        first_seen = list(number)
        order = np.argsort(np.asarray(first_seen, dtype=str), kind="stable")
        renumber = np.empty(len(order), np.int32)
        renumber[order] = np.arange(len(order), dtype=np.int32)
        distinct = [first_seen[k] for k in order]
        parts = [replace(p, caption=renumber[p.caption]) for p in parts]
    return ShardPlan(
        [p for p in parts if len(p)], distinct, [p for p in validation if len(p)], dropped
    )


def _captions_of(ids: pd.Series, texts: pd.DataFrame) -> list[str]:
    """Each id's caption; ValueError naming ids without one (as captions.captions_for)."""
    by_id = dict(zip(texts.get("id", []), texts.get("caption", []), strict=True))
    missing = [i for i in ids if not by_id.get(i)]
    if missing:
        raise ValueError(
            f"{len(missing)} images have no caption in the place texts, e.g. {missing[:3]}: "
            "re-materialize place_texts after reference_manifest"
        )
    return [by_id[i] for i in ids]
