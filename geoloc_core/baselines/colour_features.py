"""Hand-made colour features of the raw pixels: the `raw_pixels` baseline's view of an image.

A trained model that cannot beat a nearest neighbour over these 72 numbers has learnt nothing
beyond "this place has these colours". Each image is decoded by the project's robust decoder
(EXIF-upright RGB), resized to `image_size` x `image_size` (bicubic) and scaled to [0, 1]:

    [ 0:12]  mean of R, G, B in each cell of a 2 x 2 grid          values in [0, 1]
    [12:24]  standard deviation (population) of R, G, B per cell     values in [0, 0.5]
    [24:72]  square root of the joint hue x saturation histogram of all pixels: 12 hue bins
             of 30 degrees (bin 0 starts at red) x 4 saturation bins of width 0.25, as
             fractions of the pixels; grey pixels (no chroma) have hue 0 and saturation 0

Cells are ordered top-left, top-right, bottom-left, bottom-right (rows and columns split as
numpy.array_split does for odd sizes), channels R, G, B within a cell; histogram entry
(hue h, saturation s) is at 24 + 4 h + s. The square root makes the histogram block a unit
vector, so its Euclidean distance is sqrt(2) x the Hellinger distance and the three blocks
carry comparable weight without statistics of the reference set (which would cost a second
decoding pass over millions of images).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from geoloc_core.baselines.nearest import EncodedBatch
from geoloc_core.data.images import load_batch

GRID = 2
HUE_BINS = 12
SATURATION_BINS = 4
N_FEATURES = 2 * 3 * GRID * GRID + HUE_BINS * SATURATION_BINS  # 72
CELLS = ("top_left", "top_right", "bottom_left", "bottom_right")
CHANNELS = ("r", "g", "b")


def feature_names() -> list[str]:
    """One name per number, in order: what a reader of a feature vector needs to decode it."""
    means = [f"mean_{c}_{cell}" for cell in CELLS for c in CHANNELS]
    stds = [f"std_{c}_{cell}" for cell in CELLS for c in CHANNELS]
    hist = [f"sqrt_hist_hue{h:02d}_sat{s}" for h in range(HUE_BINS) for s in range(SATURATION_BINS)]
    return means + stds + hist


def colour_features(images: np.ndarray) -> np.ndarray:
    """uint8 RGB (B, H, W, 3) -> float32 (B, 72), defined in the module docstring."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (B, H, W, 3) RGB, got shape {images.shape}")
    if min(images.shape[1:3]) < GRID:
        raise ValueError(f"images must be at least {GRID} x {GRID} pixels, got {images.shape}")
    pixels = images.astype(np.float32) / 255.0
    if len(pixels) == 0:
        return np.zeros((0, N_FEATURES), dtype=np.float32)
    means, stds = _grid_statistics(pixels)
    histogram = np.sqrt(hue_saturation_histogram(pixels))
    return np.concatenate([means, stds, histogram], axis=1).astype(np.float32)


def _grid_statistics(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    means, stds = [], []
    for band in np.array_split(pixels, GRID, axis=1):
        for cell in np.array_split(band, GRID, axis=2):
            means.append(cell.mean(axis=(1, 2)))
            stds.append(cell.std(axis=(1, 2)))
    return np.concatenate(means, axis=1), np.concatenate(stds, axis=1)


def hue_saturation_histogram(pixels: np.ndarray) -> np.ndarray:
    """float RGB in [0, 1] (B, H, W, 3) -> (B, 48) pixel fractions, hue-major."""
    hue, saturation = _hue_saturation(pixels.reshape(len(pixels), -1, 3))
    hue_bin = np.minimum((hue * HUE_BINS).astype(np.int64), HUE_BINS - 1)
    sat_bin = np.minimum((saturation * SATURATION_BINS).astype(np.int64), SATURATION_BINS - 1)
    joint = hue_bin * SATURATION_BINS + sat_bin  # (B, P)
    n_bins = HUE_BINS * SATURATION_BINS
    offsets = np.arange(len(pixels))[:, None] * n_bins
    counts = np.bincount((joint + offsets).ravel(), minlength=len(pixels) * n_bins)
    return counts.reshape(len(pixels), n_bins) / joint.shape[1]


def _hue_saturation(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HSV hue in [0, 1) (a full turn is 1) and saturation in [0, 1]; both 0 for greys."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    top = rgb.max(axis=-1)
    chroma = top - rgb.min(axis=-1)
    safe = np.where(chroma > 0, chroma, 1.0)
    hue = np.where(
        top == r,
        ((g - b) / safe) % 6.0,
        np.where(top == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
    )
    hue = np.where(chroma > 0, hue / 6.0, 0.0) % 1.0
    saturation = np.where(top > 0, chroma / np.where(top > 0, top, 1.0), 0.0)
    return hue, saturation


class ColourFeatureSource:
    """Colour features of manifest images (paths relative to root); a bad file is a failure."""

    metric = "euclidean"  # squared Euclidean over the 72 numbers, unweighted

    def __init__(self, root: Path, image_size: int):
        self.root = Path(root)
        self.image_size = image_size

    def encode(self, ids: Sequence[str], images: Sequence[str]) -> EncodedBatch:
        locations = [self.root / image for image in images]
        pixels, positions, failures = load_batch(list(ids), locations, self.image_size)
        return EncodedBatch(colour_features(pixels), positions, {f.id: f.reason for f in failures})
