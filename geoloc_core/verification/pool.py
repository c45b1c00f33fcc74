"""The pool G3's geo-verification chooses from, and the decision over it, as arrays.

The benchmark step (files per benchmark) and `geoloc predict` / the served model (photos in
memory) both build the pool and take the decision here, so they cannot drift apart:

- the top `verification.pool_size` re-ranked candidates of each query (G3's S retrieved);
- widened by each query's extra points: G3's LMM answers (N generated), then the gallery
  points closest to the image in the GPS space; a query with fewer extras keeps empty slots;
- `verify` takes the argmax of cos(image GPS-aligned embedding, candidate GPS embedding) over
  the filled slots, `top1` the first re-ranked candidate;
- DualGeo's LMM reasoning, when it answered a query, replaces that query's decision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from geoloc_core.verification.geo_verify import closest_gallery_points, verify

SOURCE_TOP1 = "rerank-top1"
SOURCE_RERANK = "rerank"
SOURCE_GALLERY = "gallery"
SOURCE_REASONING = "lmm-dualgeo"

# (n, 2) degrees -> (n, d) unit GPS embeddings (the trained model's location encoder)
Encoder = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ExtraPoints:
    """One query's points joining its pool, in order."""

    latlon: np.ndarray  # (m, 2) degrees
    sources: np.ndarray  # (m,) labels, e.g. lmm-rag-5, gallery


@dataclass(frozen=True)
class CandidatePool:
    coords: np.ndarray  # (n, s, 2) degrees; the first k slots are the re-ranked candidates
    sources: np.ndarray  # (n, s) object labels; "" in an empty slot
    valid: np.ndarray  # (n, s) bool: filled slots
    scores: np.ndarray  # (n, k) retrieval scores of the re-ranked candidates

    @property
    def reranked(self) -> int:
        """k: how many slots per query hold re-ranked candidates."""
        return self.scores.shape[1]


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
        return self.source == SOURCE_REASONING


def reranked_pool(coords: np.ndarray, scores: np.ndarray) -> CandidatePool:
    """The pool of the top re-ranked candidates: coords (n, k, 2), scores (n, k)."""
    n, k = scores.shape
    sources = np.full((n, k), SOURCE_RERANK, dtype=object)
    sources[:, 0] = SOURCE_TOP1
    return CandidatePool(
        np.asarray(coords, np.float64), sources, np.ones((n, k), bool), np.asarray(scores)
    )


def widen_pool(pool: CandidatePool, extras: Sequence[ExtraPoints | None]) -> CandidatePool:
    """The pool with each query's extra points after its slots; slots a query does not fill
    stay empty (invalid). extras[row] is None for a query without extra points."""
    if len(extras) != len(pool.valid):
        raise ValueError(f"{len(extras)} extra point lists for a pool of {len(pool.valid)}")
    width = max((len(e.latlon) for e in extras if e is not None), default=0)
    n, s = pool.valid.shape
    coords = np.zeros((n, s + width, 2))
    coords[:, :s] = pool.coords
    sources = np.full((n, s + width), "", dtype=object)
    sources[:, :s] = pool.sources
    valid = np.zeros((n, s + width), bool)
    valid[:, :s] = pool.valid
    for row, extra in enumerate(extras):
        if extra is None:
            continue
        m = len(extra.latlon)
        coords[row, s : s + m] = extra.latlon
        sources[row, s : s + m] = extra.sources
        valid[row, s : s + m] = True
    return CandidatePool(coords, sources, valid, pool.scores)


def gallery_extras(
    image_gps: np.ndarray, gallery_latlon: np.ndarray, gallery_gps: np.ndarray, top: int
) -> list[ExtraPoints]:
    """Per query, the `top` gallery points closest to its image in the GPS space, best first."""
    chosen = closest_gallery_points(image_gps, gallery_gps, top)
    labels = np.full(top, SOURCE_GALLERY, dtype=object)
    return [ExtraPoints(gallery_latlon[row], labels) for row in chosen]


def decide(
    pool: CandidatePool, image_gps: np.ndarray, method: str, encode: Encoder
) -> Decision:
    """The pool's decision per query: verify (argmax cosine in the GPS space) or top1."""
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
    return Decision(chosen, pool.coords[rows, chosen], score, source, cosines)


def with_reasoning(decision: Decision, answers: Sequence[tuple[float, float] | None]) -> Decision:
    """DualGeo: each query's LMM answer (None: it gave none) replaces the pool's decision."""
    has = np.array([a is not None for a in answers], bool)
    latlon = decision.latlon.copy()
    source = decision.source.copy()
    if has.any():
        latlon[has] = np.array([a for a in answers if a is not None], np.float64)
        source[has] = SOURCE_REASONING
    return Decision(decision.chosen, latlon, decision.score, source, decision.cosines)
