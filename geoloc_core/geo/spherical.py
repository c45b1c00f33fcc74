"""The centre of a set of points on the sphere: the normalised mean of their 3-D unit vectors.

The arithmetic mean of latitudes and longitudes puts a cluster that straddles the dateline
(lon 179.9 and -179.9) at longitude 0, on the other side of the Earth, and smears a cluster
around a pole. Averaging unit vectors has neither problem. It is undefined only when the
vectors cancel (e.g. two antipodal points); that raises instead of returning an arbitrary point.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from geoloc_core.geo.distance import validated_lat_lon

# Below this length the mean vector's direction is dominated by rounding (1e-16 / 1e-9 rad is
# well under a metre), and much earlier it stops describing "where the points are".
MIN_MEAN_VECTOR_LENGTH = 1e-9


def unit_vectors(lat_deg: ArrayLike, lon_deg: ArrayLike) -> np.ndarray:
    """Earth-centred unit vectors, shape (..., 3), of points given in degrees."""
    phi = np.radians(np.asarray(lat_deg, dtype=np.float64))
    lam = np.radians(np.asarray(lon_deg, dtype=np.float64))
    cos_phi = np.cos(phi)
    return np.stack([cos_phi * np.cos(lam), cos_phi * np.sin(lam), np.sin(phi)], axis=-1)


def lat_lon_of_vectors(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude in degrees of (not necessarily unit) vectors, shape (..., 3).

    atan2 keeps full precision near the poles, where arcsin(z) would not; a vector on the polar
    axis gets longitude 0.
    """
    x, y, z = vectors[..., 0], vectors[..., 1], vectors[..., 2]
    lat = np.degrees(np.arctan2(z, np.hypot(x, y)))
    lon = np.degrees(np.arctan2(y, x))
    return lat, lon


def spherical_means(
    lat_deg: ArrayLike, lon_deg: ArrayLike, members: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Spherical mean of each row of (n, k) coordinate arrays, over the columns where `members`
    is True (all columns when None); returns (lat, lon) arrays of shape (n,), in degrees.

    Raises ValueError naming the first row that has no member or whose members cancel out.
    """
    lat, lon = validated_lat_lon(lat_deg, lon_deg)
    if lat.ndim != 2 or lat.shape != lon.shape:
        raise ValueError(
            f"lat and lon must be 2-D arrays of one shape (rows of points); "
            f"got {lat.shape} and {lon.shape}"
        )
    mask = np.ones(lat.shape, dtype=bool) if members is None else np.asarray(members, dtype=bool)
    if mask.shape != lat.shape:
        raise ValueError(f"members has shape {mask.shape}; the coordinates have {lat.shape}")
    counts = mask.sum(axis=1)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise ValueError(f"row {int(empty[0])} has no points: a spherical mean needs at least one")
    vector_sums = np.einsum("nk,nkc->nc", mask.astype(np.float64), unit_vectors(lat, lon))
    mean_length = np.linalg.norm(vector_sums, axis=1) / counts
    degenerate = np.flatnonzero(mean_length < MIN_MEAN_VECTOR_LENGTH)
    if degenerate.size:
        row = int(degenerate[0])
        raise ValueError(f"row {row}: {_cancelling_points_message(mean_length[row])}")
    return lat_lon_of_vectors(vector_sums)


def spherical_mean(lat_deg: ArrayLike, lon_deg: ArrayLike) -> tuple[float, float]:
    """Spherical mean (lat, lon) in degrees of a 1-D set of points given in degrees.

    Raises ValueError for no points, invalid coordinates, or points that cancel out.
    """
    lat, lon = validated_lat_lon(lat_deg, lon_deg)
    if lat.ndim != 1 or lat.shape != lon.shape:
        raise ValueError(
            f"lat and lon must be 1-D arrays of one length; got {lat.shape} and {lon.shape}"
        )
    if lat.size == 0:
        raise ValueError("no points: a spherical mean needs at least one")
    vector_sum = unit_vectors(lat, lon).sum(axis=0)
    mean_length = float(np.linalg.norm(vector_sum)) / lat.size
    if mean_length < MIN_MEAN_VECTOR_LENGTH:
        raise ValueError(_cancelling_points_message(mean_length))
    mean_lat, mean_lon = lat_lon_of_vectors(vector_sum)
    return float(mean_lat), float(mean_lon)


def _cancelling_points_message(mean_length: float) -> str:
    return (
        f"the points' mean unit vector has length {mean_length:.3g} "
        f"(< {MIN_MEAN_VECTOR_LENGTH:g}): they cancel out (e.g. antipodal points), "
        "so they have no spherical mean"
    )
