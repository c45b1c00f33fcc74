"""The backbone-features cache: frozen-tower outputs per image id, one directory per shard.

A shard directory holds ids.npy (sorted), pooled.npy (N, D) and tokens.npy (N, T, D) in fp16
(or fp32: the FeatureSpec's precision, params features.precision), and meta.json (the
FeatureSpec, sizes, failures, content digest). Rows are read with explicit file reads at their
offsets (os.pread), not through a memory map: pages of a mapping that a training epoch touches
would stay in the process's resident set until it ends, so over millions of images RSS would
grow with the data; a read leaves them in the page cache only, which the kernel reclaims.
Shards are found by the id's hash (the same sha1 rule as the segmentation cache), so no global
index is needed and shards are written independently, in parallel.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geoloc_core.encoders.backbone import FeatureSpec
from geoloc_core.kill_point import kill_point
from geoloc_core.npy_rows import RowFile
from geoloc_core.segmentation.sharding import shard_of, single_layout

FORMAT = "geoloc-features/1"
SHARD_DIR = re.compile(r"^shard-(\d{5})-of-(\d{5})$")
IDS, POOLED, TOKENS, META = "ids.npy", "pooled.npy", "tokens.npy", "meta.json"
DTYPES = {"fp16": np.float16, "fp32": np.float32}


def stored_dtype(spec: dict[str, Any]) -> type[np.floating]:
    """The dtype a shard's arrays are stored in, from its spec record (fp16 when unsaid)."""
    return DTYPES[spec.get("precision", "fp16")]


SHARD_FIX = "re-materialize its shard"


class FeatureCacheError(ValueError):
    """A cache directory that cannot be read as one consistent cache; names the fix."""


def shard_dir_name(index: int, n_shards: int) -> str:
    return f"shard-{index:05d}-of-{n_shards:05d}"


def spec_fingerprint(spec: FeatureSpec, image_size: int) -> str:
    """Decides a shard's content: the same fingerprint means the same features per image."""
    content = {"format": FORMAT, "image_size": image_size, **spec.to_record()}
    payload = json.dumps(content, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ShardContent:
    ids: list[str]  # sorted
    pooled: np.ndarray  # (N, D) float16 (float32 at precision fp32)
    tokens: np.ndarray  # (N, T, D) likewise
    failures: dict[str, str]  # id -> why its image could not be read

    def digest(self) -> str:
        h = hashlib.sha256()
        h.update("\n".join(self.ids).encode())
        h.update(np.ascontiguousarray(self.pooled).tobytes())
        h.update(np.ascontiguousarray(self.tokens).tobytes())
        h.update(json.dumps(self.failures, sort_keys=True).encode())
        return h.hexdigest()


def shard_meta(
    spec: FeatureSpec,
    fingerprint: str,
    image_size: int,
    content: ShardContent,
    shard: int,
    n_shards: int,
) -> dict[str, Any]:
    """A shard's meta.json (failures and the content digest are added by write_shard)."""
    return {
        "spec": spec.to_record(),
        "fingerprint": fingerprint,
        "image_size": image_size,
        "pooled_dim": int(content.pooled.shape[1]),
        "token_dim": int(content.tokens.shape[2]),
        "tokens": int(content.tokens.shape[1]),
        "ids": content.ids,
        "shard": shard,
        "n_shards": n_shards,
    }


def write_shard(
    directory: Path, index: int, n_shards: int, content: ShardContent, meta: dict[str, Any]
) -> Path:
    """Write atomically (a temp directory renamed into place); returns the shard directory."""
    if list(content.ids) != sorted(content.ids):
        raise ValueError("shard ids must be sorted")
    target = Path(directory) / shard_dir_name(index, n_shards)
    tmp = target.with_name(f".{target.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    np.save(tmp / IDS, np.array(content.ids, dtype=str))
    dtype = stored_dtype(meta.get("spec", {}))
    np.save(tmp / POOLED, content.pooled.astype(dtype))
    np.save(tmp / TOKENS, content.tokens.astype(dtype))
    full_meta = {**meta, "format": FORMAT, "digest": content.digest(), "failures": content.failures}
    (tmp / META).write_text(json.dumps(full_meta, indent=2, sort_keys=True) + "\n")
    kill_point("feature-shard-written")  # complete, not yet in place
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return target


def read_meta(shard: Path) -> dict[str, Any]:
    return json.loads((Path(shard) / META).read_text())


def shard_problem(shard: Path) -> str | None:
    """Why a written shard cannot be trusted (unreadable, or arrays that no longer match the
    digest in its meta.json), or None when it reads back as it was written."""
    try:
        meta = read_meta(shard)
        content = ShardContent(
            np.load(shard / IDS).tolist(),
            np.load(shard / POOLED),
            np.load(shard / TOKENS),
            meta["failures"],
        )
    except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable ({type(exc).__name__}: {exc})"
    if content.digest() != meta.get("digest"):
        return "its arrays do not match the digest in its meta.json"
    return None


@dataclass
class _Shard:
    ids: np.ndarray

    @classmethod
    def open(cls, path: Path) -> _Shard:
        return cls(np.load(path / IDS))

    def row(self, image_id: str) -> int:
        row = int(np.searchsorted(self.ids, image_id))
        return row if row < len(self.ids) and self.ids[row] == image_id else -1


class FeatureCache:
    """Pooled embeddings and patch tokens by image id (satisfies models.inputs.FeatureSource)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._paths, self._n_shards = _scan(self.directory)
        self._open: dict[int, _Shard] = {}
        self._files: dict[int, tuple[RowFile, RowFile]] = {}
        self._meta = self._common_meta()

    @property
    def meta(self) -> dict[str, Any]:
        """Sizes and the FeatureSpec every shard shares (failures and digests left out)."""
        return dict(self._meta)

    def spec(self) -> FeatureSpec:
        return FeatureSpec(**self._meta["spec"])

    def load(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(N, D) and (N, T, D) in the stored precision, in the order of ids; KeyError naming a
        missing id."""
        ids = list(ids)
        dtype = stored_dtype(self._meta["spec"])
        pooled = np.empty((len(ids), self._meta["pooled_dim"]), dtype=dtype)
        tokens = np.empty((len(ids), self._meta["tokens"], self._meta["token_dim"]), dtype=dtype)
        by_shard: dict[int, tuple[list[int], list[int]]] = {}
        for position, image_id in enumerate(ids):
            index = shard_of(image_id, self._n_shards)
            row = self._shard(index).row(image_id)
            if row < 0:
                raise KeyError(self._missing(image_id, index))
            by_shard.setdefault(index, ([], []))[0].append(position)
            by_shard[index][1].append(row)
        for index, (positions, rows) in by_shard.items():
            at, rows_read = np.asarray(positions), np.asarray(rows)
            pooled[at], tokens[at] = self.read_rows(index, rows_read)
        return pooled, tokens

    @property
    def n_shards(self) -> int:
        return self._n_shards

    def shard_indices(self) -> list[int]:
        return sorted(self._paths)

    def shard_ids(self, index: int) -> np.ndarray:
        """The sorted ids of one shard, read afresh (not kept: a stream holds one shard's)."""
        if index not in self._paths:
            return np.array([], dtype=str)
        return np.load(self._paths[index] / IDS)

    def read_rows(self, index: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(pooled, tokens) fp16 of rows of shard index, in the order of rows (any order)."""
        rows = np.asarray(rows, dtype=np.int64)
        shard = self._paths.get(index)
        if shard is None:
            raise FeatureCacheError(
                f"{self.directory} lacks {shard_dir_name(index, self._n_shards)}: "
                f"materialize backbone_features partition {index:03d}"
            )
        if index not in self._files:
            self._files[index] = (
                RowFile.open(shard / POOLED, SHARD_FIX, FeatureCacheError),
                RowFile.open(shard / TOKENS, SHARD_FIX, FeatureCacheError),
            )
        order = np.argsort(rows, kind="stable")
        pooled, tokens = (f.read(rows[order]) for f in self._files[index])
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        return pooled[back], tokens[back]

    def ids(self) -> list[str]:
        found: list[str] = []
        for index in sorted(self._paths):
            found += self._shard(index).ids.tolist()
        return sorted(found)

    def failures(self) -> dict[str, str]:
        failed: dict[str, str] = {}
        for path in self._paths.values():
            failed.update(read_meta(path)["failures"])
        return failed

    def _shard(self, index: int) -> _Shard:
        if index not in self._open:
            if index not in self._paths:
                raise FeatureCacheError(
                    f"{self.directory} lacks {shard_dir_name(index, self._n_shards)}: "
                    f"materialize backbone_features partition {index:03d}"
                )
            self._open[index] = _Shard.open(self._paths[index])
        return self._open[index]

    def _missing(self, image_id: str, index: int) -> str:
        reason = read_meta(self._paths[index])["failures"].get(image_id)
        if reason is not None:
            return f"{image_id!r} has no backbone features: its image failed ({reason})"
        return (
            f"{image_id!r} is not in the backbone-features cache; it is in no manifest the "
            "cache was built from: re-materialize backbone_features"
        )

    def _common_meta(self) -> dict[str, Any]:
        keys = ("spec", "fingerprint", "image_size", "pooled_dim", "token_dim", "tokens")
        # one meta.json at a time: each lists its shard's failures, so all at once would grow
        # with the data
        reference = self._paths[min(self._paths)]
        first = read_meta(reference)
        for index in sorted(self._paths):
            meta = read_meta(self._paths[index])
            if meta.get("format") != FORMAT or meta.get("fingerprint") != first.get("fingerprint"):
                raise FeatureCacheError(
                    f"{self._paths[index]} was made by another backbone or format than "
                    f"{reference}: re-materialize every backbone_features partition"
                )
        return {key: first[key] for key in keys}


def _scan(directory: Path) -> tuple[dict[int, Path], int]:
    layouts: dict[int, dict[int, Path]] = {}
    if directory.is_dir():
        for path in directory.iterdir():
            match = SHARD_DIR.match(path.name)
            if match and (path / META).is_file():
                layouts.setdefault(int(match.group(2)), {})[int(match.group(1))] = path
    return single_layout(
        layouts, directory, "backbone_features", "features.n_shards", FeatureCacheError
    )


def remove_other_layouts(directory: Path, n_shards: int) -> list[Path]:
    """Shards of another shard count would shadow nothing but confuse readers: remove them."""
    removed = []
    if Path(directory).is_dir():
        for path in Path(directory).iterdir():
            match = SHARD_DIR.match(path.name)
            if match and int(match.group(2)) != n_shards:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed
