"""train.order: shards: the feature shards read as a stream, in a seeded shuffled order.

Each epoch the shards come in an order drawn from the training generator, and each shard's
samples in a second draw from it; batches are consecutive slices of that order (a batch may
straddle two shards). The features of a batch are read with explicit reads at their rows
(FeatureCache.read_rows), and label maps (DualGeo) through a segmentation source made afresh
for each shard, so what a shard mapped is released when the stream moves on. Memory holds the
plan (shard_plan.py: 16-24 bytes a sample), the order (4 bytes a sample), the distinct
captions' embeddings and one shard's ids: nothing else grows with the reference set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from geoloc_core.models.inputs import AlignmentBatch, SegmentationSource
from geoloc_core.training.feature_cache import FeatureCache
from geoloc_core.training.shard_plan import ShardPart


class ShardStream:
    """A batch source (training/loop.py) over a shard plan; positions are plan positions.
    Without text_features the parts' caption rows are not read (the validation's reference)."""

    def __init__(
        self,
        features: FeatureCache,
        parts: list[ShardPart],
        text_features: np.ndarray | None = None,
        segmentation: Callable[[], SegmentationSource] | None = None,
    ):
        self.features = features
        self.parts = parts
        self.text_features = text_features
        self.segmentation = segmentation
        self.offsets = np.cumsum([0] + [len(p) for p in parts])
        self._current: tuple[int, np.ndarray, SegmentationSource | None] | None = None

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def epoch_order(self, generator: torch.Generator) -> np.ndarray:
        """The shards in a seeded order, each one's samples in a seeded order (int32)."""
        dtype = np.int32 if len(self) < 2**31 else np.int64
        shard_order = torch.randperm(len(self.parts), generator=generator).tolist()
        pieces = [
            torch.randperm(len(self.parts[k]), generator=generator).numpy().astype(dtype)
            + dtype(self.offsets[k])
            for k in shard_order
        ]
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype)

    def in_order(self, batch_size: int) -> Iterator[np.ndarray]:
        """Every position once, shard after shard (embedding the reference for validation)."""
        for start in range(0, len(self), batch_size):
            yield np.arange(start, min(start + batch_size, len(self)))

    def latlon(self, positions: np.ndarray) -> np.ndarray:
        part_of = self._parts_of(positions)
        out = np.empty((len(positions), 2), np.float64)
        for k in np.unique(part_of):
            mine = part_of == k
            out[mine] = self.parts[k].latlon[positions[mine] - self.offsets[k]]
        return out

    def batch(self, positions: np.ndarray) -> AlignmentBatch:
        positions = np.asarray(positions, dtype=np.int64)
        n = len(positions)
        part_of = self._parts_of(positions)
        meta = self.features.meta
        pooled = np.empty((n, meta["pooled_dim"]), np.float16)
        tokens = np.empty((n, meta["tokens"], meta["token_dim"]), np.float16)
        latlon = np.empty((n, 2), np.float64)
        captions = np.empty(n, np.int64)
        maps = None
        for k in dict.fromkeys(part_of.tolist()):  # the parts in the order the batch meets them
            mine = np.flatnonzero(part_of == k)
            part = self.parts[k]
            local = positions[mine] - self.offsets[k]
            rows = part.rows[local]
            pooled[mine], tokens[mine] = self.features.read_rows(part.shard, rows)
            latlon[mine] = part.latlon[local]
            if part.caption is not None:
                captions[mine] = part.caption[local]
            if self.segmentation is not None:
                ids, source = self._shard_inputs(part.shard)
                part_maps, _ = source.load(ids[rows].tolist())
                if maps is None:
                    maps = np.empty((n, *part_maps.shape[1:]), np.uint8)
                maps[mine] = part_maps
        batch: dict[str, torch.Tensor] = {
            "pooled": torch.from_numpy(pooled.astype(np.float32)),
            "tokens": torch.from_numpy(tokens.astype(np.float32)),
            "latlon": torch.from_numpy(latlon.astype(np.float32)),
        }
        if maps is not None:
            batch["label_maps"] = torch.from_numpy(maps.astype(np.int64))
        if self.text_features is not None:
            batch["text"] = torch.from_numpy(self.text_features[captions].astype(np.float32))
            batch["caption_ids"] = torch.from_numpy(captions)
        return AlignmentBatch(**batch)

    def _parts_of(self, positions: np.ndarray) -> np.ndarray:
        if len(positions) and (positions.min() < 0 or positions.max() >= len(self)):
            raise IndexError(f"positions outside 0..{len(self) - 1}")
        return np.searchsorted(self.offsets, positions, side="right") - 1

    def _shard_inputs(self, shard: int) -> tuple[np.ndarray, SegmentationSource]:
        """One shard's ids and a segmentation source opened for it (the last shard's let go)."""
        if self._current is None or self._current[0] != shard:
            self._current = None  # release the previous shard's maps before opening the next
            self._current = (shard, self.features.shard_ids(shard), self.segmentation())
        return self._current[1], self._current[2]
