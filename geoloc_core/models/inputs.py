"""What the alignment model reads: cached backbone features, segmentation label maps, GPS and
caption embeddings, as one batch; and the interfaces of the caches they come from.

The protocols keep models/ and training/ free of the caches' storage formats: the project's
SegmentationCache (issue 4) and FeatureCache satisfy them, and so do in-memory test doubles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Protocol

import numpy as np
import torch


class SegmentationSource(Protocol):
    def load(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(N, R, R) uint8 ADE20K label maps and (N, 150) float32 histograms; KeyError if absent."""
        ...

    def ids(self) -> list[str]:
        """Every id it holds (images that failed are not held)."""
        ...


class FeatureSource(Protocol):
    def load(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(N, D) pooled embeddings and (N, T, D) pooled patch tokens; KeyError if absent."""
        ...

    def ids(self) -> list[str]: ...


@dataclass(frozen=True)
class AlignmentBatch:
    """One batch of samples; fields a variant does not use are None."""

    pooled: torch.Tensor  # (B, D) float32
    tokens: torch.Tensor | None = None  # (B, T, D) float32
    label_maps: torch.Tensor | None = None  # (B, R, R) int64 ADE20K ids
    latlon: torch.Tensor | None = None  # (B, 2) degrees (training only)
    text: torch.Tensor | None = None  # (B, Dt) unit caption embeddings (training only)
    caption_ids: torch.Tensor | None = None  # (B,) equal ids = equal captions

    def __len__(self) -> int:
        return int(self.pooled.shape[0])

    def to(self, device: torch.device | str) -> AlignmentBatch:
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in fields(self)
            if getattr(self, f.name) is not None
        }
        return replace(self, **moved)

    def select(self, positions: torch.Tensor) -> AlignmentBatch:
        """The samples at positions (the batch-independence test uses this)."""
        chosen = {
            f.name: getattr(self, f.name)[positions]
            for f in fields(self)
            if getattr(self, f.name) is not None
        }
        return replace(self, **chosen)
