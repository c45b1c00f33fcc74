"""Decode images into RGB arrays; a bad file is reported by id, never fatal to a batch.

Each path may be a plain file or a tar member (`<archive>.tar#<member>`, see locations.py).
Squashing to size x size is for the segmentation models and the pixel baselines; the frozen
CLIP towers' input is CLIP's own transform (clip_preprocess.ImageTransform).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from geoloc_core.data.decode import (
    DECODE_ERRORS,
    DEFAULT_MAX_PIXELS,
    decode_rgb,
    describe_failure,
    read_image_bytes,
)


@dataclass(frozen=True)
class ImageFailure:
    id: str
    reason: str


def load_rgb(
    path: str | Path, size: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """RGB uint8 (H, W, 3), EXIF orientation applied; resized to size x size when given.

    Raises on a bad image (ImageDecodeError, FileNotFoundError, ...); load_batch turns that
    into an ImageFailure.
    """
    rgb = decode_rgb(read_image_bytes(path), max_pixels)
    if size is not None and rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(rgb, dtype=np.uint8).copy()


def load_batch(
    ids: Sequence[str],
    paths: Sequence[str | Path],
    size: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, list[int], list[ImageFailure]]:
    """Decode many images: returns (stack of the good ones, their positions, failures)."""
    return decode_batch(ids, paths, partial(load_rgb, size=size, max_pixels=max_pixels), size)


def decode_batch(
    ids: Sequence[str],
    locations: Sequence[str | Path],
    load: Callable[[str | Path], np.ndarray],
    size: int,
) -> tuple[np.ndarray, list[int], list[ImageFailure]]:
    """Each location through load (uint8 (size, size, 3)): (stack of the good ones, their
    positions, an ImageFailure per bad one, by id): one bad image never sinks the batch."""
    good: list[np.ndarray] = []
    positions: list[int] = []
    failures: list[ImageFailure] = []
    for position, (image_id, location) in enumerate(zip(ids, locations, strict=True)):
        try:
            good.append(load(location))
        except DECODE_ERRORS as exc:
            failures.append(ImageFailure(str(image_id), describe_failure(exc)))
        else:
            positions.append(position)
    stack = np.stack(good) if good else np.zeros((0, size, size, 3), dtype=np.uint8)
    return stack, positions, failures


def normalize_pixels(
    images: np.ndarray, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) normalised with the tower's own statistics."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    return standardize(x, mean, std)


def standardize(unit: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """float (B, 3, H, W) in [0, 1] -> normalised with the tower's own statistics."""
    mean_t = torch.tensor(mean, dtype=unit.dtype).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=unit.dtype).view(1, 3, 1, 1)
    return (unit - mean_t) / std_t
