"""The `demo` provider: the demo world's own label maps, degraded as a real segmenter would.

By default each map loses class regions at the rate published segmenters lose IoU in the view's
conditions (condition_errors.py); `segmentation.condition_errors: false` hands over the exact
ground truth, which makes the effect itself an ablation.

It still decodes every photo (through the project's load_rgb, shrunk to a few pixels since
only success matters), so an image that would fail a real model fails here too, with the same
reason, and the cache covers the same ids whichever provider filled it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from geoloc_core.data.images import ImageFailure, load_rgb
from geoloc_core.data.loader import DecodedBatch, decode_batch
from geoloc_core.segmentation.condition_errors import (
    degrade_for_conditions,
    world_conditions,
    world_manifest_of,
)
from geoloc_core.segmentation.labelmaps import invalid_label_reason
from geoloc_core.segmentation.providers.base import ImageDecoder, Prediction, WorkItem

DECODE_CHECK_SIZE = 8
LABEL_ERRORS = (OSError, ValueError, Image.DecompressionBombError)


class DemoProvider:
    name = "demo"

    def __init__(self, condition_errors: bool = True, seed: int = 0):
        self.condition_errors = condition_errors
        self.seed = seed

    def decoder(self) -> ImageDecoder:
        return ImageDecoder(partial(load_rgb, size=DECODE_CHECK_SIZE))

    def predict(
        self, items: Sequence[WorkItem], decoded: DecodedBatch | None = None
    ) -> Prediction:
        """decoded: the batch as decoder() prepares it (by worker processes), else done here."""
        if decoded is None:
            pairs = [(item.id, item.image) for item in items]
            decoded = decode_batch(0, pairs, self.decoder().decode_one)
        prediction = Prediction(failures=list(decoded.failures))
        for position in decoded.positions:
            item = items[position]
            try:
                label_map = read_label_map(item.label)
                if self.condition_errors:
                    label_map = self._degraded(label_map, item)
            except LABEL_ERRORS as exc:
                prediction.failures.append(ImageFailure(item.id, f"{type(exc).__name__}: {exc}"))
                continue
            prediction.positions.append(position)
            prediction.label_maps.append(label_map)
        return prediction

    def _degraded(self, label_map: np.ndarray, item: WorkItem) -> np.ndarray:
        assert item.label is not None  # read_label_map refused it otherwise
        conditions = world_conditions(world_manifest_of(item.label))
        if item.id not in conditions:
            raise ValueError(
                f"{item.id} is not in {world_manifest_of(item.label)}, so its conditions are "
                "unknown; regenerate the demo world or set segmentation.condition_errors: false"
            )
        return degrade_for_conditions(label_map, conditions[item.id], self.seed, item.id)

    def describe(self) -> dict[str, str]:
        return {
            "provider": self.name,
            "device": "cpu",
            "condition_errors": str(self.condition_errors).lower(),
        }


def read_label_map(path: Path | None) -> np.ndarray:
    """A demo world label PNG as (H, W) uint8 ADE20K ids; ValueError naming what is wrong."""
    if path is None:
        raise ValueError(
            "no ground-truth label map in the manifest (column 'label'); the demo provider "
            "needs the demo world, use segformer or mask2former for other data"
        )
    with Image.open(path) as img:
        if img.mode not in ("L", "P"):
            raise ValueError(f"label map {path.name} has mode {img.mode}, not L")
        label_map = np.asarray(img, dtype=np.uint8).copy()
    reason = invalid_label_reason(label_map)
    if reason:
        raise ValueError(f"{path.name}: {reason}")
    return label_map
