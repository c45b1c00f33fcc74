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


def closest_gallery_points(
    image_gps: np.ndarray, gallery_gps: np.ndarray, top: int, chunk: int = 1024
) -> np.ndarray:
    """(n, top) positions of the gallery embeddings most similar to each image, best first;
    queries are taken a chunk at a time so a 100K gallery never meets every query at once."""
    if top < 1 or top > len(gallery_gps):
        raise ValueError(f"gallery_top={top} must be in [1, {len(gallery_gps)}] (gallery size)")
    chosen = []
    for start in range(0, len(image_gps), chunk):
        scores = image_gps[start : start + chunk] @ gallery_gps.T
        part = np.argpartition(-scores, top - 1, axis=1)[:, :top]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        chosen.append(np.take_along_axis(part, order, axis=1))
    return np.concatenate(chosen)
