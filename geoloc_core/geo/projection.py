"""Web Mercator (EPSG:3857) coordinates scaled to [-1, 1], the input space of GPS encoders.

Raw degrees make longitude and latitude look alike to a network while their ground scales
differ; Mercator is conformal, so local shapes are kept and a square of xy is a square on the map.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from geoloc_core.geo.distance import validated_lat_lon

WEB_MERCATOR_RADIUS_M = 6378137.0
# Half the width of the EPSG:3857 square (pi * R): both x and y span [-this, this].
WEB_MERCATOR_HALF_EXTENT_M = 20037508.342789244
# Latitude where y reaches the half extent, atan(sinh(pi)) ~ 85.05112878 deg.
WEB_MERCATOR_MAX_LAT_DEG = float(np.degrees(np.arctan(np.sinh(np.pi))))


def mercator_normalized(lat: ArrayLike, lon: ArrayLike) -> np.ndarray:
    """Map degrees to an (N, 2) array of Web Mercator (x, y), each scaled to [-1, 1].

    Latitudes beyond +-85.05112878 deg are clamped: EPSG:3857 is *defined* on that square
    (y goes to infinity at the poles), so the clamp is the projection itself, not a data fix.
    Invalid input (NaN, |lat| > 90, |lon| > 180) still raises.
    """
    lat_deg, lon_deg = validated_lat_lon(lat, lon)
    lat_flat, lon_flat = (np.ravel(a) for a in np.broadcast_arrays(lat_deg, lon_deg))
    lat_clamped = np.clip(lat_flat, -WEB_MERCATOR_MAX_LAT_DEG, WEB_MERCATOR_MAX_LAT_DEG)
    x_m = WEB_MERCATOR_RADIUS_M * np.radians(lon_flat)
    y_m = WEB_MERCATOR_RADIUS_M * np.log(np.tan(np.pi / 4.0 + np.radians(lat_clamped) / 2.0))
    xy = np.stack([x_m, y_m], axis=-1) / WEB_MERCATOR_HALF_EXTENT_M
    # Only rounding can leave the square here; keep the documented [-1, 1] range exact.
    return np.clip(xy, -1.0, 1.0)


def mercator_normalized_inverse(xy: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Map an (N, 2) array of normalized Web Mercator (x, y) back to (lat, lon) in degrees."""
    xy_array = np.asarray(xy, dtype=np.float64)
    if xy_array.ndim != 2 or xy_array.shape[1] != 2:
        raise ValueError(f"xy must have shape (N, 2), got {xy_array.shape}")
    outside = ~(np.abs(xy_array) <= 1.0)
    if outside.any():
        row, col = (int(i) for i in np.argwhere(outside)[0])
        raise ValueError(
            f"xy has {int(outside.sum())} value(s) that are NaN or outside [-1, 1]; "
            f"first at index ({row}, {col}): {float(xy_array[row, col])!r}"
        )
    x_m = xy_array[:, 0] * WEB_MERCATOR_HALF_EXTENT_M
    y_m = xy_array[:, 1] * WEB_MERCATOR_HALF_EXTENT_M
    lon = np.degrees(x_m / WEB_MERCATOR_RADIUS_M)
    lat = np.degrees(np.arctan(np.sinh(y_m / WEB_MERCATOR_RADIUS_M)))
    return lat, lon
