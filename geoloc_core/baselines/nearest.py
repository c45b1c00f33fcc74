"""The baselines' predictors: a seeded random guess, and exact 1-nearest-neighbour retrieval
over any per-image vector (colour features, segmentation class histograms, frozen embeddings).

The reference set may hold millions of images (MP16), so it is streamed batch by batch against
the (small) query set: memory is the queries' vectors plus one reference batch, never the
whole reference matrix. Ties go to the lowest reference position, whatever the batch size.
A query whose input cannot be read is reported with its reason, never given a made-up guess.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from tqdm import tqdm

METRICS = ("cosine", "euclidean")


@dataclass(frozen=True)
class EncodedBatch:
    """Vectors of the images of one batch that could be read, and why the others could not."""

    vectors: np.ndarray  # (k, D) for the batch items at `positions`
    positions: list[int]  # indices into the batch
    failures: dict[str, str] = field(default_factory=dict)  # id -> reason


class VectorSource(Protocol):
    """What a 1-NN baseline compares: one vector per image id, and the metric it is made for."""

    metric: str

    def encode(self, ids: Sequence[str], images: Sequence[str]) -> EncodedBatch: ...


class CacheReader(Protocol):
    """SegmentationCache and FeatureCache: two arrays per id, and the ids their builder lost."""

    def load(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]: ...

    def failures(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class BaselinePrediction:
    """Which queries got a guess (positions in the benchmark rows) and which reference row."""

    query_positions: np.ndarray  # (n,) int64
    reference_positions: np.ndarray  # (n,) int64, rows of the reference set
    failures: dict[str, str]  # query id -> reason it got no guess
    reference_failed: int  # reference images left out of the search (unreadable input)


class StreamingNearest:
    """Exact 1-NN of a fixed query set over reference vectors added batch by batch.

    cosine: highest cosine similarity (zero vectors score 0 against everything);
    euclidean: lowest squared Euclidean distance, scored as 2 q.r - |r|^2 (|q|^2 is the same
    for every reference, so it is left out).
    """

    def __init__(self, queries: np.ndarray, metric: str):
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; known: {list(METRICS)}")
        vectors = _matrix(queries, "queries")
        self.metric = metric
        self._queries = _unit_rows(vectors) if metric == "cosine" else vectors
        self.best_score = np.full(len(vectors), -np.inf, dtype=np.float32)
        self.best_position = np.full(len(vectors), -1, dtype=np.int64)

    def add(self, vectors: np.ndarray, positions: np.ndarray) -> None:
        """Compare reference vectors (their global positions given) with every query."""
        reference = _matrix(vectors, "reference vectors")
        positions = np.asarray(positions, dtype=np.int64)
        if len(reference) != len(positions):
            raise ValueError(f"{len(reference)} vectors but {len(positions)} positions")
        if len(reference) == 0 or len(self._queries) == 0:
            return
        if reference.shape[1] != self._queries.shape[1]:
            raise ValueError(
                f"reference vectors have {reference.shape[1]} dimensions, queries "
                f"{self._queries.shape[1]}"
            )
        if self.metric == "cosine":
            scores = self._queries @ _unit_rows(reference).T
        else:
            scores = 2.0 * (self._queries @ reference.T) - np.sum(reference**2, axis=1)
        column = np.argmax(scores, axis=1)
        top = scores[np.arange(len(scores)), column]
        better = top > self.best_score
        self.best_score[better] = top[better]
        self.best_position[better] = positions[column[better]]


def _matrix(x: np.ndarray, name: str) -> np.ndarray:
    matrix = np.ascontiguousarray(x, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, d), got shape {matrix.shape}")
    return matrix


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def predict_random(n_queries: int, n_reference: int, seed: int) -> BaselinePrediction:
    """Each query gets the coordinates of a reference image drawn uniformly (seeded)."""
    if n_reference < 1:
        raise ValueError("the random baseline needs at least one reference image")
    picks = np.random.default_rng(seed).integers(0, n_reference, size=n_queries)
    return BaselinePrediction(np.arange(n_queries, dtype=np.int64), picks.astype(np.int64), {}, 0)


def predict_nearest(
    query_ids: Sequence[str],
    query_images: Sequence[str],
    reference_ids: Sequence[str],
    reference_images: Sequence[str],
    source: VectorSource,
    batch_size: int,
    desc: str = "baseline",
) -> BaselinePrediction:
    """1-NN of every readable query among the readable reference images, by source.metric."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    encoded = _encode_all(query_ids, query_images, source, batch_size, f"{desc} queries")
    search = StreamingNearest(encoded.vectors, source.metric)
    reference_failed = 0
    if len(encoded.positions):
        starts = range(0, len(reference_ids), batch_size)
        for start in tqdm(starts, desc=f"{desc} reference", unit="batch", disable=None):
            stop = start + batch_size
            batch = source.encode(reference_ids[start:stop], reference_images[start:stop])
            reference_failed += len(batch.failures)
            search.add(batch.vectors, start + np.asarray(batch.positions, dtype=np.int64))
        if np.any(search.best_position < 0):
            raise ValueError(
                f"{desc}: none of the {len(reference_ids)} reference images could be read "
                f"({reference_failed} failed), so no query has a neighbour"
            )
    return BaselinePrediction(
        np.asarray(encoded.positions, dtype=np.int64),
        search.best_position,
        encoded.failures,
        reference_failed,
    )


def _encode_all(
    ids: Sequence[str], images: Sequence[str], source: VectorSource, batch_size: int, desc: str
) -> EncodedBatch:
    vectors: list[np.ndarray] = []
    positions: list[int] = []
    failures: dict[str, str] = {}
    for start in tqdm(range(0, len(ids), batch_size), desc=desc, unit="batch", disable=None):
        batch = source.encode(ids[start : start + batch_size], images[start : start + batch_size])
        vectors.append(batch.vectors)
        positions += [start + p for p in batch.positions]
        failures.update(batch.failures)
    kept = [v for v in vectors if len(v)]
    stacked = np.concatenate(kept) if kept else np.zeros((0, 1), dtype=np.float32)
    return EncodedBatch(stacked, positions, failures)


class CachedVectorSource(ABC):
    """Vectors read from a per-image cache, compared by cosine; an image the cache's builder
    failed on is reported as a failure rather than encoded. Subclasses say which array of
    the cache's load they compare (`vectors`) and how a missing image is named (`missing`)."""

    metric = "cosine"
    missing: str  # the failure reason of an image the cache lacks

    def __init__(self, cache: CacheReader):
        self.cache = cache
        self._failed = cache.failures()

    def encode(self, ids: Sequence[str], images: Sequence[str]) -> EncodedBatch:
        wanted, failures = _split_failed(ids, self._failed, self.missing)
        if not wanted:
            return EncodedBatch(np.zeros((0, 1), np.float32), [], failures)
        loaded = self.cache.load([ids[p] for p in wanted])
        return EncodedBatch(self.vectors(loaded), wanted, failures)

    @abstractmethod
    def vectors(self, loaded: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """The compared vectors, from the cache's two arrays for the wanted ids."""


class HistogramSource(CachedVectorSource):
    """ADE20K class histograms from the segmentation cache, compared as sqrt(histogram) by
    cosine: the Bhattacharyya coefficient, i.e. Hellinger-nearest."""

    missing = "no segmentation"

    def vectors(self, loaded: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        _, histograms = loaded
        return np.sqrt(np.clip(histograms, 0.0, None))


class PooledEmbeddingSource(CachedVectorSource):
    """The frozen backbone's pooled embedding from the features cache, compared by cosine."""

    missing = "no backbone features"

    def vectors(self, loaded: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        pooled, _ = loaded
        return pooled.astype(np.float32)


def _split_failed(
    ids: Sequence[str], failed: dict[str, str], what: str
) -> tuple[list[int], dict[str, str]]:
    """Positions of the ids the cache holds, and reasons for those its builder failed on.

    An id neither held nor failed is a stale cache: the cache's own KeyError says so.
    """
    wanted = [p for p, image_id in enumerate(ids) if image_id not in failed]
    failures = {str(i): f"{what} ({failed[i]})" for i in ids if i in failed}
    return wanted, failures
