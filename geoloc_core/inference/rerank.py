"""Rerank: DualGeo's geographic re-rank of each query's similar candidates, as a permutation.

The clustering and the centre rule are geoloc_core/rerank/'s; this stage only says which
candidate now stands at each rank, so callers reorder whatever they hold per candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geoloc_core.rerank.dbscan import rerank_batch
from geoloc_core.rerank.settings import RerankSettings


@dataclass(frozen=True)
class Reranked:
    """n queries' re-rank of k candidates each."""

    order: np.ndarray  # (n, k) int: the original index of the candidate now at rank j
    labels: np.ndarray  # (n, k) int: DBSCAN cluster per candidate, original order; -1 = noise
    centres: np.ndarray  # (n, 2) lat, lon of the largest cluster; NaN where there is none

    @property
    def clustered(self) -> np.ndarray:
        """(n,) bool: the re-rank found a cluster (the order is the re-rank's)."""
        return ~np.isnan(self.centres[:, 0])

    def reorder(self, values: np.ndarray) -> np.ndarray:
        """(n, k, ...) per-candidate values in the re-ranked order."""
        order = self.order.reshape(self.order.shape + (1,) * (values.ndim - 2))
        return np.take_along_axis(values, order, axis=1)


def rerank_neighbours(lat: np.ndarray, lon: np.ndarray, settings: RerankSettings) -> Reranked:
    """Re-rank (n, k) candidate coordinates in degrees, best retrieval rank first."""
    order, labels, centres = rerank_batch(lat, lon, settings)
    return Reranked(order, labels, centres)
