"""Search: G3's most similar and least similar reference images of each query embedding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from geoloc_core.retrieval.index import search
from geoloc_core.retrieval.index_settings import IndexSettings
from geoloc_core.retrieval.settings import RetrievalSettings


@dataclass(frozen=True)
class Neighbours:
    """k reference images per query: positions in the index (= rows of the index meta) and
    the cosine similarity of each to the query's retrieval embedding."""

    positions: np.ndarray  # (n, k) int
    scores: np.ndarray  # (n, k)


@dataclass(frozen=True)
class SearchResult:
    similar: Neighbours  # retrieval.top_k most similar, best first
    dissimilar: Neighbours | None  # retrieval.dissimilar_k least similar (None when 0)

    def by_kind(self) -> list[tuple[str, Neighbours]]:
        kinds = [("similar", self.similar)]
        if self.dissimilar is not None:
            kinds.append(("dissimilar", self.dissimilar))
        return kinds


def search_neighbours(
    index: Any, queries: np.ndarray, settings: RetrievalSettings, index_settings: IndexSettings
) -> SearchResult:
    """G3's two searches for retrieval embeddings (n, d): the most similar reference images,
    and the least similar ones (search with the negated query; their scores are the cosine
    to the query itself)."""
    scores, positions = search(index, queries, settings.top_k, index_settings)
    similar = _full(Neighbours(positions, scores), "similar")
    dissimilar = None
    if settings.dissimilar_k:
        scores, positions = search(index, -queries, settings.dissimilar_k, index_settings)
        dissimilar = _full(Neighbours(positions, -scores), "dissimilar")
    return SearchResult(similar, dissimilar)


def _full(neighbours: Neighbours, kind: str) -> Neighbours:
    """The neighbours, or an error when the index returned fewer than k for some query."""
    if (neighbours.positions < 0).any():
        k = neighbours.positions.shape[1]
        raise ValueError(f"the index returned fewer than {k} {kind} neighbours for some query")
    return neighbours
