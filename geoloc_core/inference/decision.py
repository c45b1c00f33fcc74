"""Decision: per query, the pool's candidate G3's geo-verification picks, or DualGeo's answer.

`verify` takes the argmax of cos(image GPS-aligned embedding, candidate GPS embedding) over
the filled pool slots, `top1` the first re-ranked candidate; DualGeo's LMM reasoning, when it
answered a query, replaces that query's decision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from geoloc_core.inference.pool import CandidatePool
from geoloc_core.lmm.jobs import SOURCE_DUALGEO
from geoloc_core.verification.geo_verify import verify

# (n, 2) degrees -> (n, d) unit GPS embeddings (the trained model's location encoder)
Encoder = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Decision:
    chosen: np.ndarray  # (n,) pool slot of the decision (the pool's, before any reasoning)
    latlon: np.ndarray  # (n, 2) degrees
    score: np.ndarray  # (n,) cosine of the chosen slot (verify) or its retrieval score (top1)
    source: np.ndarray  # (n,) object: the chosen slot's label, or lmm-dualgeo
    cosines: np.ndarray | None  # (n, s) verify only: -inf in empty slots

    @property
    def by_reasoning(self) -> np.ndarray:
        """(n,) bool: decided by DualGeo's LMM reasoning."""
        return self.source == SOURCE_DUALGEO


def decide(
    pool: CandidatePool,
    image_gps: np.ndarray,
    method: str,
    encode: Encoder,
    reasoning: Sequence[tuple[float, float] | None] | None = None,
) -> Decision:
    """The pool's decision per query: verify (argmax cosine in the GPS space) or top1; then,
    when DualGeo's reasoning ran, its answer per query (None: it gave none) replaces it."""
    n = len(pool.valid)
    rows = np.arange(n)
    cosines = None
    if method == "verify":
        encoded = encode(pool.coords[pool.valid])
        candidate_gps = np.zeros((*pool.valid.shape, encoded.shape[1]), np.float32)
        candidate_gps[pool.valid] = encoded
        chosen, cosines = verify(image_gps, candidate_gps, pool.valid)
        score = cosines[rows, chosen]
    else:
        chosen = np.zeros(n, np.int64)
        score = pool.scores[:, 0]
    # object, not str: a fixed-width str array as wide as its longest label ("rerank", when
    # that is every decision) would cut a longer label written into it later
    source = pool.sources[rows, chosen].astype(object)
    decision = Decision(chosen, pool.coords[rows, chosen], score, source, cosines)
    return decision if reasoning is None else _with_reasoning(decision, reasoning)


def _with_reasoning(decision: Decision, answers: Sequence[tuple[float, float] | None]) -> Decision:
    """DualGeo: each query's LMM answer (None: it gave none) replaces the pool's decision."""
    has = np.array([a is not None for a in answers], bool)
    latlon = decision.latlon.copy()
    source = decision.source.copy()
    if has.any():
        latlon[has] = np.array([a for a in answers if a is not None], np.float64)
        source[has] = SOURCE_DUALGEO
    return Decision(decision.chosen, latlon, decision.score, source, decision.cosines)


def first_answers(
    query_ids: Sequence[str],
    answer_query_ids: Sequence[str],
    answer_samples: Sequence[int],
    answer_latlon: np.ndarray,
) -> list[tuple[float, float] | None]:
    """DualGeo's decision per query: its answer of the lowest sample (flat rows: query id,
    sample, (lat, lon)), None without one."""
    best: dict[str, int] = {}
    for row, query in enumerate(answer_query_ids):
        held = best.get(str(query))
        if held is None or answer_samples[row] < answer_samples[held]:
            best[str(query)] = row
    return [
        (float(answer_latlon[best[q], 0]), float(answer_latlon[best[q], 1])) if q in best else None
        for q in map(str, query_ids)
    ]
