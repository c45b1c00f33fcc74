"""The one interface every segmentation provider implements.

A provider turns a batch of images into full-resolution ADE20K label maps. It never raises for
one bad image: the image is returned as a failure naming its id, and the rest of the batch goes on.
Everything after that (noise, histogram, downsampling, storage) is shared, so providers differ
only in where the labels come from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from geoloc_core.data.images import ImageFailure
from geoloc_core.data.loader import DecodedBatch, DecodeOne, FinishBatch


@dataclass(frozen=True)
class WorkItem:
    id: str
    image: Path  # absolute path of the photo
    label: Path | None = None  # the demo world's ground-truth label map, when the manifest has one


@dataclass
class Prediction:
    positions: list[int] = field(default_factory=list)  # batch positions that succeeded
    label_maps: list[np.ndarray] = field(default_factory=list)  # (H, W) uint8, one per position
    failures: list[ImageFailure] = field(default_factory=list)


@dataclass(frozen=True)
class ImageDecoder:
    """How a provider wants its images prepared, so that worker processes can do it ahead
    (data/loader.py): one image -> array, and the stacked batch -> the model's input. A provider
    with a `decoder()` also takes the batch so prepared: `predict(items, decoded)`."""

    decode_one: DecodeOne
    finish: FinishBatch | None = None


class SegmentationProvider(Protocol):
    name: str

    def predict(self, items: Sequence[WorkItem], decoded: DecodedBatch | None = None) -> Prediction:
        """Label maps for the items that decode; a failure per item that does not. decoded:
        the items as the provider's decoder() prepares them (by worker processes), when it has
        one; a provider without decoder() decodes in predict and gets no decoded batch."""
        ...

    def describe(self) -> dict[str, str]:
        """Where and how it runs (device, dtype, model): for logs and tracking only."""
        ...
