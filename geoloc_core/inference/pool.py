"""Pool: the candidates G3's geo-verification chooses from, per query, as arrays.

- the top `verification.pool_size` re-ranked candidates of each query (G3's S retrieved);
- widened by each query's extra points: G3's LMM answers (N generated), then the gallery
  points closest to the image in the GPS space; a query with fewer extras keeps empty slots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from geoloc_core.verification.geo_verify import closest_gallery_points

SOURCE_TOP1 = "rerank-top1"
SOURCE_RERANK = "rerank"
SOURCE_GALLERY = "gallery"


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


def _reranked_pool(coords: np.ndarray, scores: np.ndarray) -> CandidatePool:
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


def _gallery_extras(
    image_gps: np.ndarray, gallery_latlon: np.ndarray, gallery_gps: np.ndarray, top: int
) -> list[ExtraPoints]:
    """Per query, the `top` gallery points closest to its image in the GPS space, best first."""
    chosen = closest_gallery_points(image_gps, gallery_gps, top)
    labels = np.full(top, SOURCE_GALLERY, dtype=object)
    return [ExtraPoints(gallery_latlon[row], labels) for row in chosen]


@dataclass(frozen=True)
class Gallery:
    """verification.gallery's points, their GPS embeddings, and how many join each pool."""

    latlon: np.ndarray  # (m, 2) degrees
    gps: np.ndarray  # (m, d) unit GPS embeddings
    top: int  # verification.gallery_top


def answer_extras(
    query_ids: Sequence[str],
    answer_query_ids: Sequence[str],
    answer_sources: Sequence[str],
    answer_latlon: np.ndarray,
) -> list[ExtraPoints | None]:
    """Each query's LMM answers (flat rows: query id, source, (lat, lon), in answer order) as
    its pool's extra points; None for a query without answers."""
    rows: dict[str, list[int]] = {}
    for row, query in enumerate(answer_query_ids):
        rows.setdefault(str(query), []).append(row)
    sources = np.asarray(answer_sources, dtype=object)
    extras: list[ExtraPoints | None] = []
    for query in query_ids:
        mine = rows.get(str(query))
        extras.append(None if mine is None else ExtraPoints(answer_latlon[mine], sources[mine]))
    return extras


def candidate_pool(
    coords: np.ndarray,
    scores: np.ndarray,
    pool_size: int,
    image_gps: np.ndarray,
    lmm_extras: Sequence[ExtraPoints | None] | None = None,
    gallery: Gallery | None = None,
) -> CandidatePool:
    """Each query's pool: its first pool_size re-ranked candidates (coords (n, k, 2), scores
    (n, k)), then its LMM answers (G3's geo-diversification, when it ran), then the gallery
    points closest to its image (image_gps (n, d))."""
    k = min(pool_size, scores.shape[1])
    pool = _reranked_pool(coords[:, :k], scores[:, :k])
    if lmm_extras is not None:
        pool = widen_pool(pool, lmm_extras)
    if gallery is not None:
        points = _gallery_extras(image_gps, gallery.latlon, gallery.gps, gallery.top)
        pool = widen_pool(pool, points)
    return pool
