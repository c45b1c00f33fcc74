"""Real geographic attributes of a site: climate band, urban density and coastline.

These drive what a site looks like, so a model that learns the look learns real geography.
"""

from __future__ import annotations

import numpy as np

from geoloc_core.demo_world.places import PlaceTable, count_places_within, offset_point

CLIMATES: tuple[str, ...] = ("tropical", "subtropical", "arid", "temperate", "cold")
DENSITIES: tuple[str, ...] = ("rural", "town", "city", "metropolis")

DENSITY_RADIUS_KM = 20.0
# Upper bounds (exclusive) of places within DENSITY_RADIUS_KM for rural, town and city.
DENSITY_THRESHOLDS: tuple[int, int, int] = (4, 12, 40)

COAST_RING_KM = 7.0
COAST_RING_BEARINGS = 12
# Continentality rings: deserts sit in the subtropics far from any ocean.
INLAND_RINGS_KM: tuple[float, ...] = (300.0, 600.0)
INLAND_RING_BEARINGS = 12
ARID_MAX_OCEAN_FRACTION = 1.0 / 12.0
ARID_LATITUDES: tuple[float, float] = (15.0, 35.0)


def _ring_is_ocean(lat: float, lon: float, radius_km: float, bearings: int) -> np.ndarray:
    # Imported here: loading the land mask takes seconds, and render workers never need it.
    from global_land_mask import globe

    points = [
        offset_point(lat, lon, radius_km, 2.0 * np.pi * k / bearings) for k in range(bearings)
    ]
    lats = np.array([p[0] for p in points])
    lons = np.array([p[1] for p in points])
    return np.asarray(globe.is_ocean(lats, lons), dtype=bool)


def is_coastal(lat: float, lon: float) -> bool:
    """Sea within a few km: the site shows a sea horizon."""
    return bool(_ring_is_ocean(lat, lon, COAST_RING_KM, COAST_RING_BEARINGS).any())


def ocean_fraction_far(lat: float, lon: float) -> float:
    """Share of ocean on wide rings around the site: low means deep inland."""
    rings = [_ring_is_ocean(lat, lon, r, INLAND_RING_BEARINGS) for r in INLAND_RINGS_KM]
    return float(np.mean(np.concatenate(rings)))


def climate_band(lat: float, lon: float) -> str:
    """Latitude band, with arid for subtropical interiors (Sahara, Arabia, outback, Gobi)."""
    abs_lat = abs(lat)
    if abs_lat >= 55.0:
        return "cold"
    low, high = ARID_LATITUDES
    if low <= abs_lat < high and ocean_fraction_far(lat, lon) <= ARID_MAX_OCEAN_FRACTION:
        return "arid"
    if abs_lat < 23.5:
        return "tropical"
    if abs_lat < 35.0:
        return "subtropical"
    return "temperate"


def density_class(places: PlaceTable, lat: float, lon: float) -> str:
    """Built-up level from the number of GeoNames places nearby (more places, bigger town)."""
    count = count_places_within(places, lat, lon, DENSITY_RADIUS_KM)
    for name, upper in zip(DENSITIES, DENSITY_THRESHOLDS, strict=False):
        if count < upper:
            return name
    return DENSITIES[-1]
