"""Validation split for sources that ship none (MP16-Pro, a folder of photos).

A row's split depends only on a hash of its id, so adding or removing other rows never moves
it, and the same id lands in the same split on every machine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

_SCALE = float(1 << 64)


def hash_fraction(image_id: str) -> float:
    """A stable pseudo-uniform number in [0, 1) for an id."""
    digest = hashlib.blake2b(image_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def assign_splits(ids: Iterable[str], validation_fraction: float) -> np.ndarray:
    """'validation' for about validation_fraction of the ids, 'reference' for the rest."""
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    draws = np.fromiter((hash_fraction(str(i)) for i in ids), dtype=np.float64)
    return np.where(draws < validation_fraction, "validation", "reference")
