"""Reading the segmentation cache: what training and retrieval call.

Shards are opened lazily and memory-mapped, so random access over millions of images costs the
pages touched, not the cache's size. An id's shard is found from its hash (no global index) and
its row by binary search over the shard's sorted ids. Checksums are verified by the writer (the
asset), not on every read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geoloc_core.ade20k import NUM_CLASSES
from geoloc_core.segmentation.container import memmap_member
from geoloc_core.segmentation.errors import SegmentationError
from geoloc_core.segmentation.shardfile import (
    FAILED_IDS,
    FAILURE_REASONS,
    HISTOGRAMS,
    IDS,
    LABEL_MAPS,
    decode_strings,
)
from geoloc_core.segmentation.sharding import (
    parse_shard_file_name,
    shard_file_name,
    shard_keys,
    shard_of,
    single_layout,
)


@dataclass
class _Shard:
    path: Path
    ids: np.ndarray  # sorted UTF-8 bytes
    label_maps: np.ndarray  # memory-mapped (N, R, R) uint8
    histograms: np.ndarray  # memory-mapped (N, 150) float32

    @classmethod
    def open(cls, path: Path) -> _Shard:
        return cls(
            path,
            memmap_member(path, IDS),
            memmap_member(path, LABEL_MAPS),
            memmap_member(path, HISTOGRAMS),
        )

    def row(self, image_id: str) -> int:
        """Row of image_id, or -1 when the shard does not hold it."""
        key = np.array(image_id.encode("utf-8"), dtype=bytes)
        row = int(np.searchsorted(self.ids, key))
        return row if row < len(self.ids) and self.ids[row] == key else -1

    def failures(self) -> dict[str, str]:
        ids = decode_strings(memmap_member(self.path, FAILED_IDS))
        reasons = decode_strings(memmap_member(self.path, FAILURE_REASONS))
        return dict(zip(ids, reasons, strict=True))


class SegmentationCache:
    """ADE20K label maps and class histograms by image id, from the shard files in directory."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._files: dict[int, Path] | None = None
        self._n_shards = 0
        self._open: dict[int, _Shard] = {}

    def load(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(N, R, R) uint8 ADE20K label maps (0-based ids, see geoloc_core/ade20k.py) and
        (N, 150) float32 class histograms (fractions summing to 1), in the order of ids;
        KeyError naming the first missing id."""
        ids = list(ids)
        located: dict[int, tuple[list[int], list[int]]] = {}
        for position, image_id in enumerate(ids):
            index = shard_of(image_id, self._layout())
            shard = self._shard(index)
            row = shard.row(image_id) if shard is not None else -1
            if row < 0:
                raise KeyError(self._missing(image_id, index, shard))
            located.setdefault(index, ([], []))[0].append(position)
            located[index][1].append(row)
        resolution = self.resolution()
        maps = np.empty((len(ids), resolution, resolution), dtype=np.uint8)
        histograms = np.empty((len(ids), NUM_CLASSES), dtype=np.float32)
        for index, (positions, rows) in located.items():
            shard = self._open[index]
            order = np.argsort(rows, kind="stable")  # read the file front to back
            at, source = np.asarray(positions)[order], np.asarray(rows)[order]
            maps[at] = shard.label_maps[source]
            histograms[at] = shard.histograms[source]
        return maps, histograms

    def ids(self) -> list[str]:
        """Every cached id (failed images excluded), sorted."""
        found: list[str] = []
        for index in sorted(self._shard_files()):
            found += decode_strings(self._shard(index).ids)
        return sorted(found)

    def failures(self) -> dict[str, str]:
        """id -> why the image could not be segmented, over every shard present."""
        failed: dict[str, str] = {}
        for index in sorted(self._shard_files()):
            failed.update(self._shard(index).failures())
        return failed

    def resolution(self) -> int:
        """Side R of the stored label maps."""
        first = self._shard(min(self._shard_files()))
        return int(first.label_maps.shape[1])

    def _shard_files(self) -> dict[int, Path]:
        if self._files is None:
            self._files, self._n_shards = _scan(self.directory)
        return self._files

    def _layout(self) -> int:
        self._shard_files()
        return self._n_shards

    def _shard(self, index: int) -> _Shard | None:
        if index not in self._open:
            path = self._shard_files().get(index)
            if path is None:
                return None
            shard = _Shard.open(path)
            if self._open:
                expected = next(iter(self._open.values())).label_maps.shape[1:]
                if shard.label_maps.shape[1:] != expected:
                    raise SegmentationError(
                        f"{path} holds {shard.label_maps.shape[1:]} label maps, other shards "
                        f"{expected}: re-materialize segmentation_cache"
                    )
            self._open[index] = shard
        return self._open[index]

    def _missing(self, image_id: str, index: int, shard: _Shard | None) -> str:
        if shard is None:
            name = shard_file_name(index, self._n_shards)
            return (
                f"{image_id!r} is not in the segmentation cache: its shard {name} is not in "
                f"{self.directory}; materialize segmentation_cache partition "
                f"{shard_keys(self._n_shards)[index]}"
            )
        reason = shard.failures().get(image_id)
        if reason is not None:
            return f"{image_id!r} is not in the segmentation cache: its image failed ({reason})"
        return (
            f"{image_id!r} is not in the segmentation cache ({shard.path.name}); it is in no "
            "manifest the cache was built from: re-materialize segmentation_cache"
        )


def _scan(directory: Path) -> tuple[dict[int, Path], int]:
    """Shard files by index, all of one layout (shard count)."""
    layouts: dict[int, dict[int, Path]] = {}
    if directory.is_dir():
        for path in directory.iterdir():
            parsed = parse_shard_file_name(path.name)
            if parsed is not None:
                layouts.setdefault(parsed[1], {})[parsed[0]] = path
    return single_layout(
        layouts, directory, "segmentation_cache", "segmentation.n_shards", SegmentationError
    )
