"""Nearest-neighbour geolocation: a query takes the coordinates of its closest reference image."""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from geoloc_core.retrieval.index import search


@dataclass(frozen=True)
class NeighbourPredictions:
    lat: np.ndarray  # (n,) top-1 prediction
    lon: np.ndarray
    neighbour_positions: np.ndarray  # (n, k) positions in the reference set
    scores: np.ndarray  # (n, k) cosine similarities


def predict_nearest(
    index: faiss.Index,
    reference_latlon: np.ndarray,
    query_embeddings: np.ndarray,
    top_k: int,
) -> NeighbourPredictions:
    if top_k < 1:
        raise ValueError(f"retrieval.top_k must be >= 1, got {top_k}")
    scores, positions = search(index, query_embeddings, top_k)
    best = positions[:, 0]
    return NeighbourPredictions(
        lat=reference_latlon[best, 0],
        lon=reference_latlon[best, 1],
        neighbour_positions=positions,
        scores=scores,
    )
