"""The decision rule: argmax over a candidate pool of cos(image, candidate) in the GPS space."""

from __future__ import annotations

import numpy as np


def verify(
    image_gps: np.ndarray, candidate_gps: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(chosen position per query, cosine scores with -inf where a slot is empty).

    image_gps (n, d) and candidate_gps (n, s, d) are unit vectors; valid (n, s) marks filled
    pool slots. A query whose pool is empty is an error: there is nothing to choose from.
    """
    if image_gps.ndim != 2 or candidate_gps.ndim != 3 or valid.shape != candidate_gps.shape[:2]:
        raise ValueError(
            f"shapes disagree: image {image_gps.shape}, candidates {candidate_gps.shape}, "
            f"valid {valid.shape}"
        )
    empty = ~valid.any(axis=1)
    if empty.any():
        raise ValueError(f"{int(empty.sum())} queries have an empty candidate pool")
    scores = np.einsum("nd,nsd->ns", image_gps, candidate_gps)
    scores = np.where(valid, scores, -np.inf)
    return scores.argmax(axis=1), scores
