"""DualGeo's geographic-clustering re-rank of a query's top-k GPS candidates.

Retrieved neighbours that agree on a place form a dense cluster; isolated hits are usually
look-alikes from elsewhere. DBSCAN (haversine, eps in km; all queries at once, see
dbscan_batch.py) or HDBSCAN (no eps; see hdbscan.py) finds the clusters; every candidate is then
re-sorted by great-circle distance to the largest cluster's centre, so the consensus place comes
first and the retrieval rank breaks ties. Unlike the published code, the centre is the spherical
mean (a cluster across the dateline stays there), the sort is stable, and a query with no
cluster keeps its retrieval order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from geoloc_core.geo.distance import (
    LATITUDE_LIMIT_DEG,
    LONGITUDE_LIMIT_DEG,
    haversine_km,
    validated_lat_lon,
)
from geoloc_core.geo.spherical import spherical_means
from geoloc_core.rerank.dbscan_batch import NOISE, dbscan_labels
from geoloc_core.rerank.settings import RerankSettings

# Distances to the centre that agree to a millimetre are ties (the better retrieval rank wins).
# Without this, the two members of a two-point cluster, equidistant from their midpoint, would
# be ordered by rounding noise, differently on different machines.
DISTANCE_TIE_KM = 1e-6


@dataclass(frozen=True)
class RerankResult:
    """One query's re-rank: `order[j]` is the original index of the candidate now at rank j."""

    order: np.ndarray  # int, a permutation of range(k)
    labels: np.ndarray  # cluster per candidate, in the original order; -1 = noise
    centre: tuple[float, float] | None  # (lat, lon) of the largest cluster; None: no cluster


def rerank_one(
    lat: ArrayLike,
    lon: ArrayLike,
    eps_km: float,
    min_samples: int,
    method: str = "dbscan",
    min_cluster_size: int = 2,
) -> RerankResult:
    """Re-rank one query's k candidates (1-D lat/lon in degrees, best retrieval rank first)."""
    lat_array, lon_array = validated_lat_lon(lat, lon)
    if lat_array.ndim != 1 or lat_array.shape != lon_array.shape:
        raise ValueError(
            f"lat and lon must be 1-D arrays of one length; "
            f"got {lat_array.shape} and {lon_array.shape}"
        )
    settings = RerankSettings(
        method=method, eps_km=eps_km, min_samples=min_samples, min_cluster_size=min_cluster_size
    )
    order, labels, centres = rerank_batch(lat_array[None, :], lon_array[None, :], settings)
    centre = None if np.isnan(centres[0, 0]) else (float(centres[0, 0]), float(centres[0, 1]))
    return RerankResult(order=order[0], labels=labels[0], centre=centre)


def rerank_batch(
    lat: ArrayLike, lon: ArrayLike, settings: RerankSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Re-rank n queries' candidates, given as (n, k) lat/lon arrays in degrees.

    Returns order (n, k) int (row i: original candidate indices in their new order), labels
    (n, k) int (clusters in the original order, -1 = noise) and centres (n, 2) float
    (lat, lon of the largest cluster; NaN where a query has no cluster and keeps its order).
    Method "none" keeps every order and runs no clustering.
    """
    lat_array, lon_array = _validated_candidates(lat, lon)
    n, k = lat_array.shape
    order = np.tile(np.arange(k, dtype=np.int64), (n, 1))
    centres = np.full((n, 2), np.nan)
    if settings.method == "none" or k == 0:
        return order, np.full((n, k), NOISE, dtype=np.int64), centres

    labels = cluster_labels(lat_array, lon_array, settings)
    chosen = _largest_cluster(labels)
    rows = np.flatnonzero(chosen != NOISE)
    if rows.size:
        members = labels[rows] == chosen[rows, None]
        centre_lat, centre_lon = spherical_means(lat_array[rows], lon_array[rows], members)
        centres[rows, 0], centres[rows, 1] = centre_lat, centre_lon
        distance = haversine_km(
            lat_array[rows], lon_array[rows], centre_lat[:, None], centre_lon[:, None]
        )
        order[rows] = np.argsort(np.rint(distance / DISTANCE_TIE_KM), axis=1, kind="stable")
    return order, labels, centres


def cluster_labels(lat: np.ndarray, lon: np.ndarray, settings: RerankSettings) -> np.ndarray:
    """(n, k) cluster labels of validated candidates under settings.method; -1 is noise.
    HDBSCAN (scikit-learn, one fit per query) is imported on first use only."""
    if settings.method == "hdbscan":
        from geoloc_core.rerank.hdbscan import hdbscan_labels

        return hdbscan_labels(lat, lon, settings.min_cluster_size, settings.min_samples)
    return dbscan_labels(lat, lon, settings.eps_km, settings.min_samples)


def _largest_cluster(labels: np.ndarray) -> np.ndarray:
    """Per row, the label of the cluster with the most members; among equally large clusters,
    the one holding the best-ranked (lowest-index) candidate. NOISE where a row has no cluster."""
    n, k = labels.shape
    # Per-row histogram of labels shifted by one so noise lands in column 0.
    flat = (np.arange(n)[:, None] * (k + 1) + labels + 1).ravel()
    sizes = np.bincount(flat, minlength=n * (k + 1)).reshape(n, k + 1)[:, 1:]
    largest = sizes.max(axis=1)
    is_largest = (sizes == largest[:, None]) & (largest[:, None] > 0)
    in_largest = is_largest[np.arange(n)[:, None], np.maximum(labels, 0)] & (labels != NOISE)
    first = np.argmax(in_largest, axis=1)
    return np.where(largest > 0, labels[np.arange(n), first], NOISE)


def _validated_candidates(lat: ArrayLike, lon: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(n, k) float arrays, or ValueError naming the first bad row and column."""
    lat_array = np.asarray(lat, dtype=np.float64)
    lon_array = np.asarray(lon, dtype=np.float64)
    if lat_array.ndim != 2 or lat_array.shape != lon_array.shape:
        raise ValueError(
            f"candidate lat and lon must be (n queries, k candidates) arrays of one shape; "
            f"got {lat_array.shape} and {lon_array.shape}"
        )
    for name, values, limit in (
        ("lat", lat_array, LATITUDE_LIMIT_DEG),
        ("lon", lon_array, LONGITUDE_LIMIT_DEG),
    ):
        bad = ~(np.abs(values) <= limit)  # NaN fails the comparison too
        if bad.any():
            row, column = (int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"candidate {name} of query row {row}, column {column} is "
                f"{float(values[row, column])!r}: must be finite and within "
                f"[-{limit:g}, {limit:g}] ({int(bad.any(axis=1).sum())} row(s) affected)"
            )
    return lat_array, lon_array
