"""The `demo` provider: the demo world's own ground-truth label maps.

It still decodes every photo (through the project's load_batch, shrunk to a few pixels since
only success matters), so an image that would fail a real model fails here too, with the same
reason, and the cache covers the same ids whichever provider filled it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from geoloc_core.data.images import ImageFailure, load_batch
from geoloc_core.segmentation.labelmaps import invalid_label_reason
from geoloc_core.segmentation.providers.base import Prediction, WorkItem

DECODE_CHECK_SIZE = 8
LABEL_ERRORS = (OSError, ValueError, Image.DecompressionBombError)


class DemoProvider:
    name = "demo"

    def predict(self, items: Sequence[WorkItem]) -> Prediction:
        _, decoded, failures = load_batch(
            [item.id for item in items], [item.image for item in items], DECODE_CHECK_SIZE
        )
        prediction = Prediction(failures=list(failures))
        for position in decoded:
            item = items[position]
            try:
                label_map = read_label_map(item.label)
            except LABEL_ERRORS as exc:
                prediction.failures.append(ImageFailure(item.id, f"{type(exc).__name__}: {exc}"))
                continue
            prediction.positions.append(position)
            prediction.label_maps.append(label_map)
        return prediction

    def describe(self) -> dict[str, str]:
        return {"provider": self.name, "device": "cpu"}


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
