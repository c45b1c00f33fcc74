"""Seeded label noise, to measure how segmentation errors propagate into geolocation.

The random stream depends only on (seed, image id), never on batch or shard composition, so a
noisy cache is as reproducible as a clean one. A replaced label is always a wrong class.
"""

from __future__ import annotations

import hashlib

import numpy as np

from geoloc_core.ade20k import NUM_CLASSES


def image_rng(seed: int, image_id: str) -> np.random.Generator:
    id_word = int.from_bytes(hashlib.sha256(image_id.encode("utf-8")).digest()[:8], "big")
    return np.random.default_rng(np.random.SeedSequence([seed, id_word]))


def add_label_noise(
    label_map: np.ndarray, fraction: float, unit: str, seed: int, image_id: str
) -> np.ndarray:
    """A noisy copy of label_map.

    unit "pixel": exactly round(fraction * pixels) pixels get a random wrong class each.
    unit "class": each class present is, with probability fraction, replaced everywhere by one
    random wrong class (a model confusing a whole region).
    """
    if fraction <= 0:
        return label_map
    rng = image_rng(seed, image_id)
    noisy = label_map.astype(np.int64)  # a copy; widened so the modular shift cannot overflow
    if unit == "pixel":
        count = round(fraction * noisy.size)
        flat = noisy.reshape(-1)
        chosen = rng.choice(flat.size, size=count, replace=False)
        flat[chosen] = (flat[chosen] + rng.integers(1, NUM_CLASSES, size=count)) % NUM_CLASSES
    elif unit == "class":
        for label in np.unique(label_map):
            if rng.random() < fraction:
                noisy[label_map == label] = (label + rng.integers(1, NUM_CLASSES)) % NUM_CLASSES
    else:
        raise ValueError(f"label noise unit {unit!r} is not 'pixel' or 'class'")
    return noisy.astype(np.uint8)
