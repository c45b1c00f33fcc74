"""Training and query samples as batches for the alignment model, read from the caches by id.

Nothing is held but ids, coordinates and caption indices: features and label maps are read per
batch from the (memory-mapped) caches, so the same code serves the demo and MP16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from geoloc_core.models.inputs import AlignmentBatch, FeatureSource, SegmentationSource


@dataclass
class AlignmentData:
    ids: list[str]
    features: FeatureSource
    segmentation: SegmentationSource | None = None  # only variants with the dual view
    latlon: np.ndarray | None = None  # (N, 2) degrees; training and validation only
    text_features: np.ndarray | None = None  # (U, Dt) unit caption embeddings
    caption_index: np.ndarray | None = None  # (N,) row of each sample's caption

    def __post_init__(self) -> None:
        n = len(self.ids)
        if self.latlon is not None and len(self.latlon) != n:
            raise ValueError(f"{n} ids but {len(self.latlon)} coordinates")
        if (self.text_features is None) != (self.caption_index is None):
            raise ValueError("text_features and caption_index come together")
        if self.caption_index is not None and len(self.caption_index) != n:
            raise ValueError(f"{n} ids but {len(self.caption_index)} caption indices")

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, positions: np.ndarray) -> AlignmentBatch:
        positions = np.asarray(positions, dtype=np.int64)
        chosen = [self.ids[p] for p in positions]
        pooled, tokens = self.features.load(chosen)
        batch: dict[str, torch.Tensor] = {
            "pooled": torch.from_numpy(np.asarray(pooled, dtype=np.float32)),
            "tokens": torch.from_numpy(np.asarray(tokens, dtype=np.float32)),
        }
        if self.segmentation is not None:
            maps, _ = self.segmentation.load(chosen)
            batch["label_maps"] = torch.from_numpy(np.asarray(maps, dtype=np.int64))
        if self.latlon is not None:
            batch["latlon"] = torch.from_numpy(self.latlon[positions].astype(np.float32))
        if self.caption_index is not None and self.text_features is not None:
            captions = self.caption_index[positions]
            batch["text"] = torch.from_numpy(self.text_features[captions].astype(np.float32))
            batch["caption_ids"] = torch.from_numpy(captions.astype(np.int64))
        return AlignmentBatch(**batch)

    def subset(self, positions: np.ndarray) -> AlignmentData:
        positions = np.asarray(positions, dtype=np.int64)
        return AlignmentData(
            [self.ids[p] for p in positions],
            self.features,
            self.segmentation,
            None if self.latlon is None else self.latlon[positions],
            self.text_features,
            None if self.caption_index is None else self.caption_index[positions],
        )
