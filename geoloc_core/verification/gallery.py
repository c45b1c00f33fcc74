"""verification.gallery: a CSV of GPS points that joins every query's verification pool."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from geoloc_core.encoders.geoclip_files import GPS_GALLERY_FILE, resolve_release_file
from geoloc_core.geo.distance import validated_lat_lon


def read_gallery(path: Path) -> np.ndarray:
    """(m, 2) degrees from a CSV with lat/lon columns (any case: GeoCLIP's file says LAT,
    LON), every row checked."""
    if not path.is_file():
        raise FileNotFoundError(f"verification.gallery {path} does not exist")
    table = pd.read_csv(path)
    columns = {c.lower(): c for c in table.columns}
    if "lat" not in columns or "lon" not in columns:
        raise ValueError(f"{path} needs lat and lon columns, has {list(table.columns)}")
    latlon = table[[columns["lat"], columns["lon"]]].to_numpy(np.float64)
    validated_lat_lon(latlon[:, 0], latlon[:, 1])
    return latlon


def load_gallery(setting: str, root: Path) -> np.ndarray:
    """verification.gallery as (m, 2) degrees: `geoclip` (the wheel's file) or a CSV path
    relative to root."""
    return read_gallery(resolve_release_file(setting, GPS_GALLERY_FILE, root))
