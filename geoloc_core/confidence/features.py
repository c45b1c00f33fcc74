"""What the inference chain knows about how sure its decision is, per query.

- spread_km: the median great-circle distance from the decision to the first top_m re-ranked
  candidates. Retrieval that keeps finding the same place puts them all near the decision.
- agreement: the share of those candidates within agree_km of the decision.
- margin: the decision's score (verification cosine, or retrieval cosine under method top1)
  minus the best score of a pool candidate at another place (farther than agree_km). A
  runner-up that nearly ties with the decision is a coin toss between two places. When every
  candidate lies at the decision's place there is no such runner-up: the lowest score of the
  pool stands in for it, so the margin is the pool's whole range.

The same function serves the benchmark steps, `geoloc predict` and the served model, over the
chain's own arrays (inference/pool.py, inference/decision.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geoloc_core.geo.distance import haversine_km
from geoloc_core.inference.decision import Decision
from geoloc_core.inference.pool import CandidatePool

FEATURE_NAMES = ("log_spread", "agreement", "margin")


@dataclass(frozen=True)
class ConfidenceFeatures:
    spread_km: np.ndarray  # (n,)
    agreement: np.ndarray  # (n,) in [0, 1]
    margin: np.ndarray  # (n,)

    def matrix(self) -> np.ndarray:
        """(n, 3) in FEATURE_NAMES order: the spread on a log scale (errors span 1 to 10^4 km)."""
        return np.column_stack([np.log1p(self.spread_km), self.agreement, self.margin])


def confidence_features(
    pool: CandidatePool, decision: Decision, top_m: int, agree_km: float
) -> ConfidenceFeatures:
    """The three features of each query's decision over its pool."""
    n, slots = pool.valid.shape
    decided = decision.latlon
    lat = np.where(pool.valid, pool.coords[..., 0], 0.0)
    lon = np.where(pool.valid, pool.coords[..., 1], 0.0)
    km = haversine_km(decided[:, :1], decided[:, 1:], lat, lon)  # (n, slots)
    m = min(top_m, pool.reranked)
    near = km[:, :m]
    spread = np.median(near, axis=1)
    agreement = (near <= agree_km).mean(axis=1)
    if decision.cosines is not None:
        scores = np.where(pool.valid, decision.cosines, -np.inf)
    else:
        scores = np.full((n, slots), -np.inf)
        scores[:, : pool.reranked] = pool.scores
    elsewhere = np.where(km > agree_km, scores, -np.inf).max(axis=1)
    lowest = np.where(np.isfinite(scores), scores, np.inf).min(axis=1)
    runner_up = np.where(np.isfinite(elsewhere), elsewhere, lowest)
    margin = np.asarray(decision.score, np.float64) - runner_up
    return ConfidenceFeatures(spread, agreement, margin)
