"""From a provider's full-resolution label map to what the cache stores: a class histogram
(taken at full resolution, so small classes such as signboards still count) and a low-resolution
map downsampled by mode, so every stored value is a class id some pixel really had."""

from __future__ import annotations

import numpy as np

from geoloc_core.ade20k import NUM_CLASSES


def class_histogram(label_map: np.ndarray) -> np.ndarray:
    """(150,) float32 fractions of pixels per class; they sum to 1."""
    counts = np.bincount(label_map.ravel(), minlength=NUM_CLASSES)[:NUM_CLASSES]
    return (counts / label_map.size).astype(np.float32)


def downsample_mode(label_map: np.ndarray, size: int) -> np.ndarray:
    """(size, size) uint8: the most frequent class per block (ties: the lowest id).

    Exact block mode when the map's sides are multiples of size; otherwise (upsampling or an
    uneven ratio) nearest neighbour, which also keeps ids valid.
    """
    height, width = label_map.shape
    if (height, width) == (size, size):
        return np.ascontiguousarray(label_map, dtype=np.uint8)
    if height % size or width % size:
        rows = ((np.arange(size) + 0.5) * height / size).astype(np.int64)
        cols = ((np.arange(size) + 0.5) * width / size).astype(np.int64)
        return np.ascontiguousarray(label_map[np.ix_(rows, cols)], dtype=np.uint8)
    fh, fw = height // size, width // size
    blocks = label_map.reshape(size, fh, size, fw).transpose(0, 2, 1, 3).reshape(size * size, -1)
    offsets = np.arange(size * size, dtype=np.int64)[:, None] * NUM_CLASSES
    counts = np.bincount((offsets + blocks).ravel(), minlength=size * size * NUM_CLASSES)
    modes = counts.reshape(size * size, NUM_CLASSES).argmax(axis=1)
    return modes.astype(np.uint8).reshape(size, size)


def invalid_label_reason(label_map: np.ndarray) -> str | None:
    """Why a map cannot be cached (wrong shape or an id outside ADE20K-150), else None."""
    if label_map.ndim != 2 or label_map.size == 0:
        return f"label map has shape {label_map.shape}; expected a non-empty (H, W) array"
    top = int(label_map.max())
    if top >= NUM_CLASSES:
        return f"label map holds class id {top}; ADE20K-150 ids are 0..{NUM_CLASSES - 1}"
    return None
