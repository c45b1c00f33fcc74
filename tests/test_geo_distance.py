"""Distances must match the reference implementation (geopy/geographiclib) to the metre."""

from __future__ import annotations

import numpy as np
import pytest
from geopy.distance import geodesic as geopy_geodesic
from geopy.distance import great_circle as geopy_great_circle

from geoloc_core.geo.distance import (
    MEAN_EARTH_RADIUS_KM,
    distance_km,
    geodesic_km,
    haversine_km,
)

METRE_IN_KM = 1e-3


def random_points(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform on the sphere, so polar and equatorial pairs are both represented."""
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, count)))
    lon = rng.uniform(-180.0, 180.0, count)
    return lat, lon


def geopy_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return geopy_geodesic((lat1, lon1), (lat2, lon2)).km


@pytest.fixture(scope="module")
def random_pairs() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20240601)
    lat1, lon1 = random_points(rng, 2000)
    lat2, lon2 = random_points(rng, 2000)
    return lat1, lon1, lat2, lon2


def test_geodesic_matches_geopy_on_random_pairs(random_pairs) -> None:
    lat1, lon1, lat2, lon2 = random_pairs
    expected = np.array([geopy_km(*pair) for pair in zip(lat1, lon1, lat2, lon2, strict=True)])
    np.testing.assert_allclose(geodesic_km(lat1, lon1, lat2, lon2), expected, atol=METRE_IN_KM)


EDGE_PAIRS = {
    "equator_antipodes": (0.0, 0.0, 0.0, 180.0),
    "equator_antipodes_negative": (0.0, 90.0, 0.0, -90.0),
    "near_antipodes": (0.5, 0.0, -0.5, 179.7),
    "near_antipodes_mid_latitude": (41.0, -73.0, -40.9999, 107.0001),
    "north_pole_to_equator": (90.0, 0.0, 0.0, 45.0),
    "south_pole_to_mid_latitude": (-90.0, 0.0, -45.0, 120.0),
    "pole_to_pole": (90.0, 0.0, -90.0, 0.0),
    "across_dateline": (10.0, 179.9, 10.0, -179.9),
    "across_dateline_equator": (0.0, 179.9, 0.0, -179.9),
    "identical_points": (48.8566, 2.3522, 48.8566, 2.3522),
    "lon_180_vs_minus_180": (12.0, 180.0, 12.0, -180.0),
}


@pytest.mark.parametrize("pair", EDGE_PAIRS.values(), ids=EDGE_PAIRS.keys())
def test_geodesic_matches_geopy_on_edge_pairs(pair: tuple[float, float, float, float]) -> None:
    assert float(geodesic_km(*pair)) == pytest.approx(geopy_km(*pair), abs=METRE_IN_KM)


@pytest.mark.parametrize(
    "pair", [EDGE_PAIRS["identical_points"], EDGE_PAIRS["lon_180_vs_minus_180"]]
)
def test_same_location_is_zero_km(pair: tuple[float, float, float, float]) -> None:
    assert float(geodesic_km(*pair)) == pytest.approx(0.0, abs=1e-9)
    assert float(haversine_km(*pair)) == pytest.approx(0.0, abs=1e-9)


def test_across_dateline_is_short_way_round() -> None:
    assert float(geodesic_km(0.0, 179.9, 0.0, -179.9)) < 23.0


def test_haversine_within_half_percent_of_geodesic(random_pairs) -> None:
    lat1, lon1, lat2, lon2 = random_pairs
    ellipsoid = geodesic_km(lat1, lon1, lat2, lon2)
    sphere = haversine_km(lat1, lon1, lat2, lon2)
    relative_error = np.abs(sphere / ellipsoid - 1.0)
    # Typical pairs agree to 0.5 %; short north-south hops near the equator can reach the
    # ellipsoid's curvature limit, 1 - a(1 - e^2) / R_mean ~ 0.56 %, so that is the hard bound.
    semi_major_km, eccentricity_sq = 6378.137, 0.00669437999014
    worst_case = 1.0 - semi_major_km * (1.0 - eccentricity_sq) / MEAN_EARTH_RADIUS_KM
    assert np.mean(relative_error < 0.005) >= 0.99
    assert np.median(relative_error) < 0.003
    assert relative_error.max() <= worst_case


def test_haversine_quarter_meridian_is_quarter_circle() -> None:
    expected = MEAN_EARTH_RADIUS_KM * np.pi / 2.0
    assert float(haversine_km(0.0, 0.0, 90.0, 0.0)) == pytest.approx(expected, rel=1e-12)


def test_haversine_antipodes_is_half_circle() -> None:
    expected = MEAN_EARTH_RADIUS_KM * np.pi
    assert float(haversine_km(30.0, 10.0, -30.0, -170.0)) == pytest.approx(expected, rel=1e-12)


def test_inputs_broadcast() -> None:
    lat2 = np.array([[0.0, 1.0], [2.0, 3.0]])
    result = geodesic_km(0.0, 0.0, lat2, 0.0)
    assert result.shape == (2, 2)
    assert result[0, 0] == 0.0
    assert haversine_km(0.0, 0.0, lat2, 0.0).shape == (2, 2)
    assert geodesic_km(0.0, 0.0, 1.0, 1.0).shape == ()


def test_empty_input_gives_empty_output() -> None:
    assert geodesic_km([], [], [], []).shape == (0,)
    assert haversine_km([], [], [], []).shape == (0,)


def test_distance_km_dispatches() -> None:
    """Paris to New York by each method, against geopy's ellipsoid and its great circle."""
    paris, new_york = (48.8566, 2.3522), (40.7128, -74.0060)
    ellipsoid = geopy_geodesic(paris, new_york).km  # 5852.935 km
    sphere = geopy_great_circle(paris, new_york, radius=MEAN_EARTH_RADIUS_KM).km  # 5837.249 km
    assert ellipsoid - sphere > 15.0  # far enough apart to tell which method ran
    args = (*paris, *new_york)
    assert float(distance_km(*args)) == pytest.approx(ellipsoid, abs=METRE_IN_KM)
    assert float(distance_km(*args, method="geodesic")) == pytest.approx(ellipsoid, abs=METRE_IN_KM)
    assert float(distance_km(*args, method="haversine")) == pytest.approx(sphere, abs=METRE_IN_KM)


def test_distance_km_unknown_method_lists_valid_ones() -> None:
    message = r"unknown distance method 'vincenty'; valid methods: \['geodesic', 'haversine'\]"
    with pytest.raises(ValueError, match=message):
        distance_km(0.0, 0.0, 1.0, 1.0, method="vincenty")  # type: ignore[arg-type]


@pytest.mark.parametrize("distance_fn", [geodesic_km, haversine_km])
def test_nan_raises_with_count_and_first_index(distance_fn) -> None:
    lat1 = np.array([0.0, np.nan, 10.0, np.nan])
    with pytest.raises(ValueError, match=r"lat1 has 2 NaN value\(s\); first at index 1"):
        distance_fn(lat1, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("distance_fn", [geodesic_km, haversine_km])
def test_latitude_out_of_range_raises(distance_fn) -> None:
    lat2 = [0.0, 45.0, 90.5, -91.0]
    message = r"lat2 has 2 value\(s\) outside \[-90, 90\]; first at index 2: 90\.5"
    with pytest.raises(ValueError, match=message):
        distance_fn(0.0, 0.0, lat2, 0.0)


@pytest.mark.parametrize("distance_fn", [geodesic_km, haversine_km])
def test_longitude_out_of_range_raises(distance_fn) -> None:
    message = r"lon1 has 1 value\(s\) outside \[-180, 180\]; first at index 0: 180\.0001"
    with pytest.raises(ValueError, match=message):
        distance_fn(0.0, [180.0001, 180.0, -180.0], 0.0, 0.0)


def test_infinite_coordinate_raises() -> None:
    with pytest.raises(ValueError, match=r"lon2 has 1 value\(s\) outside"):
        geodesic_km(0.0, 0.0, 0.0, np.inf)


def test_multidimensional_error_reports_tuple_index() -> None:
    lat = np.zeros((2, 3))
    lat[1, 2] = 100.0
    with pytest.raises(ValueError, match=r"first at index \(1, 2\): 100\.0"):
        geodesic_km(lat, 0.0, 0.0, 0.0)


# Twice WGS-84's meridian quadrant (10,001.965729 km), and half the mean-radius great circle.
POLE_TO_POLE_GEODESIC_KM = 20003.931458625
POLE_TO_POLE_HAVERSINE_KM = np.pi * 6371.0088  # 20,015.114442 km


def test_poles_and_dateline_bounds_are_valid() -> None:
    lat1, lon1, lat2, lon2 = [90.0, -90.0], [180.0, -180.0], [-90.0, 90.0], [-180.0, 180.0]
    assert geopy_km(90.0, 0.0, -90.0, 0.0) == pytest.approx(POLE_TO_POLE_GEODESIC_KM, abs=1e-6)
    np.testing.assert_allclose(
        geodesic_km(lat1, lon1, lat2, lon2), POLE_TO_POLE_GEODESIC_KM, rtol=0, atol=1e-6
    )
    np.testing.assert_allclose(
        haversine_km(lat1, lon1, lat2, lon2), POLE_TO_POLE_HAVERSINE_KM, rtol=1e-12
    )
