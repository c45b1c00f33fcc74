"""What a shard (or a part of one) holds, in one place for the writer and the reader:

ids (UTF-8 bytes, sorted), label_maps (N, R, R) uint8, histograms (N, 150) float32, and the
images that failed with their reasons; the settings fingerprint and checksum live in its meta.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geoloc_core.ade20k import NUM_CLASSES
from geoloc_core.data.images import ImageFailure
from geoloc_core.segmentation.container import CorruptFileError, read_arrays, write_arrays

IDS = "ids"
LABEL_MAPS = "label_maps"
HISTOGRAMS = "histograms"
FAILED_IDS = "failed_ids"
FAILURE_REASONS = "failure_reasons"


def encode_strings(values: Sequence[str]) -> np.ndarray:
    """Fixed-width UTF-8 bytes: a quarter of numpy's unicode width, and still sortable."""
    if not values:
        return np.zeros(0, dtype="S1")
    return np.array([value.encode("utf-8") for value in values], dtype=bytes)


def decode_strings(values: np.ndarray) -> list[str]:
    return [bytes(value).decode("utf-8") for value in values]


@dataclass(frozen=True)
class ShardRows:
    ids: list[str]
    label_maps: np.ndarray  # (N, R, R) uint8
    histograms: np.ndarray  # (N, 150) float32
    failures: list[ImageFailure]

    @classmethod
    def empty(cls, resolution: int) -> ShardRows:
        return cls(
            [],
            np.zeros((0, resolution, resolution), dtype=np.uint8),
            np.zeros((0, NUM_CLASSES), dtype=np.float32),
            [],
        )

    @classmethod
    def concat(cls, parts: Sequence[ShardRows], resolution: int) -> ShardRows:
        parts = [cls.empty(resolution), *parts]
        return cls(
            [i for part in parts for i in part.ids],
            np.concatenate([part.label_maps for part in parts]),
            np.concatenate([part.histograms for part in parts]),
            [f for part in parts for f in part.failures],
        )

    def covered_ids(self) -> list[str]:
        """Every id this holds, cached or failed."""
        return sorted([*self.ids, *(f.id for f in self.failures)])

    def select(self, order: Sequence[str]) -> ShardRows:
        """The cached rows for the ids in order (failures are not carried over)."""
        position = {image_id: index for index, image_id in enumerate(self.ids)}
        rows = [position[image_id] for image_id in order]
        return ShardRows(list(order), self.label_maps[rows], self.histograms[rows], [])

    def to_arrays(self) -> dict[str, np.ndarray]:
        failures = sorted(self.failures, key=lambda f: f.id)
        return {
            IDS: encode_strings(self.ids),
            LABEL_MAPS: np.ascontiguousarray(self.label_maps, dtype=np.uint8),
            HISTOGRAMS: np.ascontiguousarray(self.histograms, dtype=np.float32),
            FAILED_IDS: encode_strings([f.id for f in failures]),
            FAILURE_REASONS: encode_strings([f.reason for f in failures]),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ShardRows:
        failures = [
            ImageFailure(i, r)
            for i, r in zip(
                decode_strings(arrays[FAILED_IDS]),
                decode_strings(arrays[FAILURE_REASONS]),
                strict=True,
            )
        ]
        return cls(decode_strings(arrays[IDS]), arrays[LABEL_MAPS], arrays[HISTOGRAMS], failures)


def write_rows(path: Path, rows: ShardRows, meta: dict[str, Any]) -> str:
    """Atomic, byte-reproducible; returns the content sha256."""
    return write_arrays(path, rows.to_arrays(), meta)


def read_rows(path: Path) -> tuple[ShardRows, dict[str, Any]]:
    """Verified rows and meta; CorruptFileError when the file cannot be trusted."""
    arrays, meta = read_arrays(path)
    try:
        return ShardRows.from_arrays(arrays), meta
    except (KeyError, ValueError) as exc:
        raise CorruptFileError(f"{path} is not a segmentation shard ({exc})") from exc
