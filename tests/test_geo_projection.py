"""Normalized Web Mercator must agree with PROJ's EPSG:3857 and invert cleanly."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Transformer

from geoloc_core.geo.projection import (
    WEB_MERCATOR_HALF_EXTENT_M,
    WEB_MERCATOR_MAX_LAT_DEG,
    mercator_normalized,
    mercator_normalized_inverse,
)


@pytest.fixture(scope="module")
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_max_latitude_constant() -> None:
    assert abs(WEB_MERCATOR_MAX_LAT_DEG - 85.05112878) < 1e-8


def test_matches_pyproj(rng: np.random.Generator) -> None:
    lat = rng.uniform(-85.0, 85.0, 5000)
    lon = rng.uniform(-180.0, 180.0, 5000)
    lat[:4] = [0.0, 85.0, -85.0, 1e-6]
    lon[:4] = [0.0, 180.0, -180.0, -1e-6]
    to_mercator = Transformer.from_crs(4326, 3857, always_xy=True)
    x_m, y_m = to_mercator.transform(lon, lat)
    expected = np.stack([x_m, y_m], axis=-1) / WEB_MERCATOR_HALF_EXTENT_M
    np.testing.assert_allclose(mercator_normalized(lat, lon), expected, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize(
    ("lat", "lon", "expected"),
    [
        (WEB_MERCATOR_MAX_LAT_DEG, 180.0, (1.0, 1.0)),
        (-WEB_MERCATOR_MAX_LAT_DEG, -180.0, (-1.0, -1.0)),
        (85.05112878, -180.0, (-1.0, 1.0)),
        (-85.05112878, 180.0, (1.0, -1.0)),
        (0.0, 0.0, (0.0, 0.0)),
    ],
)
def test_corners_and_origin(lat: float, lon: float, expected: tuple[float, float]) -> None:
    np.testing.assert_allclose(mercator_normalized(lat, lon)[0], expected, atol=1e-12)


def test_poles_clamp_to_edge() -> None:
    xy = mercator_normalized([90.0, 89.0, -90.0], [10.0, 10.0, 10.0])
    np.testing.assert_array_equal(xy[:, 1], [1.0, 1.0, -1.0])
    assert np.all(np.abs(xy) <= 1.0)


def test_output_shape() -> None:
    assert mercator_normalized(10.0, 20.0).shape == (1, 2)
    assert mercator_normalized([10.0, 20.0, 30.0], 5.0).shape == (3, 2)
    assert mercator_normalized([], []).shape == (0, 2)


def test_round_trip(rng: np.random.Generator) -> None:
    lat = rng.uniform(-WEB_MERCATOR_MAX_LAT_DEG, WEB_MERCATOR_MAX_LAT_DEG, 5000)
    lon = rng.uniform(-180.0, 180.0, 5000)
    lat_back, lon_back = mercator_normalized_inverse(mercator_normalized(lat, lon))
    np.testing.assert_allclose(lat_back, lat, atol=1e-9)
    np.testing.assert_allclose(lon_back, lon, atol=1e-9)


def test_inverse_of_corners() -> None:
    lat, lon = mercator_normalized_inverse([[1.0, 1.0], [-1.0, -1.0]])
    np.testing.assert_allclose(lat, [WEB_MERCATOR_MAX_LAT_DEG, -WEB_MERCATOR_MAX_LAT_DEG])
    np.testing.assert_allclose(lon, [180.0, -180.0])


def test_forward_rejects_invalid_coordinates() -> None:
    with pytest.raises(ValueError, match=r"lat has 1 value\(s\) outside \[-90, 90\]"):
        mercator_normalized([91.0], [0.0])
    with pytest.raises(ValueError, match=r"lon has 1 NaN"):
        mercator_normalized([0.0], [np.nan])


@pytest.mark.parametrize("bad_xy", [[[0.0, 1.5]], [[np.nan, 0.0]], [[-1.0000001, 0.0]]])
def test_inverse_rejects_values_outside_square(bad_xy) -> None:
    with pytest.raises(ValueError, match=r"xy has 1 value\(s\) that are NaN or outside \[-1, 1\]"):
        mercator_normalized_inverse(bad_xy)


@pytest.mark.parametrize("bad_shape", [np.zeros(2), np.zeros((3, 3)), np.zeros((2, 2, 2))])
def test_inverse_rejects_wrong_shape(bad_shape: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"xy must have shape \(N, 2\)"):
        mercator_normalized_inverse(bad_shape)
