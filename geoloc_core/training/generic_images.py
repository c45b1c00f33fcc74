"""Generic images that are not photos of places, with captions, for the demo's pretraining.

CLIP learnt from the whole web, so a picture of static, a flat colour or a pattern lands near
its own words, far from every street. A stand-in pretrained on street views alone has never
seen anything else, so it maps such a picture onto some street, and the far-photo warning
(predict/far_warning.py) stays silent. Showing the pretraining a few hundred procedurally drawn
non-photos, each captioned with its kind, gives the stand-in that part of CLIP's breadth
(outlier exposure). They join the caption loss only: no place, no coordinates, no view pairs.

Drawn from a seed alone, so the same settings give the same images.
"""

from __future__ import annotations

import math

import numpy as np

KINDS: tuple[tuple[str, str], ...] = (
    ("noise", "a picture of random coloured noise"),
    ("grey_noise", "a picture of grey static"),
    ("flat", "a picture of one flat colour"),
    ("gradient", "a picture of a smooth colour gradient"),
    ("stripes", "a picture of straight stripes"),
    ("checks", "a picture of a checkerboard pattern"),
)


def generic_images(count: int, size: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """(count, size, size, 3) uint8 images, the kinds in turn, and each image's caption."""
    rng = np.random.default_rng([seed, 0x6E0])
    images = np.empty((count, size, size, 3), np.uint8)
    captions: list[str] = []
    for i in range(count):
        kind, caption = KINDS[i % len(KINDS)]
        images[i] = _draw(kind, size, rng)
        captions.append(caption)
    return images, captions


def grey_ladder(levels: int, size: int) -> tuple[np.ndarray, list[str]]:
    """(levels, size, size, 3) flat greys from black to white, with the flat colour's caption:
    random flat colours seldom come near grey, the commonest blank picture."""
    values = np.linspace(0, 255, levels).round().astype(np.uint8)
    images = np.broadcast_to(values[:, None, None, None], (levels, size, size, 3)).copy()
    return images, [dict(KINDS)["flat"]] * levels


def _draw(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "noise":
        return _blocky(rng.integers(0, 256, (*_cells(size, rng), 3)), size)
    if kind == "grey_noise":
        return _blocky(np.repeat(rng.integers(0, 256, (*_cells(size, rng), 1)), 3, axis=2), size)
    if kind == "flat":
        colour = rng.integers(0, 256, 3)
        jitter = rng.normal(0.0, rng.uniform(0.0, 4.0), (size, size, 3))
        return np.clip(colour + jitter, 0, 255).astype(np.uint8)
    along = _direction(size, rng)
    if kind == "gradient":
        low, high = rng.integers(0, 256, (2, 3))
        t = (along - along.min()) / max(float(np.ptp(along)), 1e-9)
        return (low + t[..., None] * (high - low)).astype(np.uint8)
    low, high = rng.integers(0, 256, (2, 3))
    period = rng.uniform(3.0, size / 2)
    if kind == "stripes":
        on = np.floor(along / period) % 2 == 1
    else:
        across = _direction(size, rng)
        on = (np.floor(along / period) + np.floor(across / period)) % 2 == 1
    return np.where(on[..., None], high, low).astype(np.uint8)


def _cells(size: int, rng: np.random.Generator) -> tuple[int, int]:
    """Noise is drawn at 1 to 8 pixels a grain."""
    grain = int(rng.choice([1, 1, 2, 4, 8]))
    return math.ceil(size / grain), math.ceil(size / grain)


def _blocky(cells: np.ndarray, size: int) -> np.ndarray:
    rows = np.repeat(cells, math.ceil(size / cells.shape[0]), axis=0)[:size]
    return np.repeat(rows, math.ceil(size / cells.shape[1]), axis=1)[:, :size].astype(np.uint8)


def _direction(size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size) pixel positions projected on a random direction."""
    angle = rng.uniform(0.0, math.pi)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    return x * math.cos(angle) + y * math.sin(angle)
