"""Benchmark scores: strict thresholds, exact percentages, loud failures on bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from pyproj import Geod

from geoloc_core.geo.distance import geodesic_km
from geoloc_core.geo.metrics import (
    DEFAULT_THRESHOLDS_KM,
    GeoMetrics,
    accuracy_within,
    evaluate_predictions,
    summarize_errors,
)

WGS84 = Geod(ellps="WGS84")
ACCURACY_KEYS = ["acc_1km", "acc_25km", "acc_200km", "acc_750km", "acc_2500km"]


def just_below(values: tuple[float, ...]) -> np.ndarray:
    """The largest floats strictly smaller than each value."""
    return np.nextafter(np.asarray(values, dtype=np.float64), 0.0)


def equator_point_at_exact_km(distance: float) -> tuple[float, float]:
    """(lat, lon) on the equator whose geodesic_km from (0, 0) is exactly `distance`.

    Geod.fwd places the point; fwd + inv rounding can leave the measured distance an ulp off,
    so the longitude is nudged one ulp at a time, both ways, until the measurement is exact.
    """
    lon, lat, _ = WGS84.fwd(0.0, 0.0, 90.0, distance * 1000.0)
    for step in range(16):
        for direction in (0.0, 180.0):
            candidate = lon
            for _ in range(step):
                candidate = float(np.nextafter(candidate, direction))
            if float(geodesic_km(0.0, 0.0, lat, candidate)) == distance:
                return lat, candidate
    raise AssertionError(f"could not place a point exactly {distance} km from (0, 0)")


def test_default_thresholds() -> None:
    assert DEFAULT_THRESHOLDS_KM == (1, 25, 200, 750, 2500)


def test_error_exactly_at_threshold_does_not_count() -> None:
    at_thresholds = np.array(DEFAULT_THRESHOLDS_KM, dtype=np.float64)
    assert accuracy_within(at_thresholds, DEFAULT_THRESHOLDS_KM) == {
        1.0: 0.0,
        25.0: 20.0,
        200.0: 40.0,
        750.0: 60.0,
        2500.0: 80.0,
    }


def test_error_just_below_threshold_counts() -> None:
    below = just_below(DEFAULT_THRESHOLDS_KM)
    assert accuracy_within(below, DEFAULT_THRESHOLDS_KM) == {
        1.0: 20.0,
        25.0: 40.0,
        200.0: 60.0,
        750.0: 80.0,
        2500.0: 100.0,
    }


def test_mixed_errors_exact_percentages() -> None:
    at_thresholds = np.array(DEFAULT_THRESHOLDS_KM, dtype=np.float64)
    errors = np.concatenate([at_thresholds, just_below(DEFAULT_THRESHOLDS_KM)])
    summary = summarize_errors(errors)
    assert [summary[key] for key in ACCURACY_KEYS] == [10.0, 30.0, 50.0, 70.0, 90.0]
    assert summary["n"] == 10


def test_coordinates_exactly_on_threshold_do_not_count() -> None:
    pred_lat, pred_lon = equator_point_at_exact_km(25.0)
    assert float(geodesic_km(0.0, 0.0, pred_lat, pred_lon)) == 25.0
    just_inside_lon = float(np.nextafter(pred_lon, 0.0))
    assert float(geodesic_km(0.0, 0.0, pred_lat, just_inside_lon)) < 25.0
    summary = evaluate_predictions(
        [0.0, 0.0], [0.0, 0.0], [pred_lat, pred_lat], [pred_lon, just_inside_lon]
    )
    assert summary["acc_1km"] == 0.0
    assert summary["acc_25km"] == 50.0
    assert summary["acc_200km"] == 100.0


def test_summary_on_hand_computed_example() -> None:
    summary = summarize_errors([10.0, 1.0, 3.0, 2.0])
    assert summary == {
        "acc_1km": 0.0,
        "acc_25km": 100.0,
        "acc_200km": 100.0,
        "acc_750km": 100.0,
        "acc_2500km": 100.0,
        "median_km": 2.5,
        "mean_km": 4.0,
        "n": 4,
    }
    assert isinstance(summary["n"], int)


def test_odd_count_median() -> None:
    summary = summarize_errors([5.0, 0.5, 3000.0])
    assert summary["median_km"] == 5.0
    assert summary["mean_km"] == pytest.approx(3005.5 / 3)
    assert summary["acc_1km"] == pytest.approx(100.0 / 3)


def test_metric_names_follow_thresholds_and_avoid_at_sign() -> None:
    summary = summarize_errors([1.0], thresholds_km=(0.5, 10, 100.0))
    assert list(summary) == ["acc_0.5km", "acc_10km", "acc_100km", "median_km", "mean_km", "n"]
    assert all("@" not in name for name in summarize_errors([1.0]))


def test_threshold_whose_name_mlflow_would_refuse_raises() -> None:
    with pytest.raises(ValueError, match="not a valid MLflow metric name"):
        summarize_errors([1.0], thresholds_km=(1e6,))


def test_geo_metrics_is_frozen() -> None:
    metrics = GeoMetrics.from_errors([1.0, 2.0, 30.0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        metrics.n = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        metrics.accuracy_pct[1.0] = 50.0  # type: ignore[index]
    # by hand: none below 1 km, two of three below 25 km; median 2, mean 33 / 3
    expected = {
        "acc_1km": 0.0,
        "acc_25km": 200.0 / 3,
        "acc_200km": 100.0,
        "acc_750km": 100.0,
        "acc_2500km": 100.0,
        "median_km": 2.0,
        "mean_km": 11.0,
        "n": 3,
    }
    assert list(metrics.as_dict()) == list(expected)
    assert metrics.as_dict() == pytest.approx(expected, rel=1e-12)


def test_perfect_predictions() -> None:
    lat = [48.8566, -33.8688, 35.6762]
    lon = [2.3522, 151.2093, 139.6503]
    summary = evaluate_predictions(lat, lon, lat, lon)
    assert [summary[key] for key in ACCURACY_KEYS] == [100.0] * 5
    assert summary["median_km"] == 0.0
    assert summary["n"] == 3


def test_evaluate_predictions_haversine() -> None:
    summary = evaluate_predictions([0.0], [0.0], [90.0], [0.0], method="haversine")
    assert summary["median_km"] == pytest.approx(6371.0088 * np.pi / 2.0, rel=1e-12)


@pytest.mark.parametrize("empty", [[], np.array([]), np.empty((0, 2))])
def test_empty_errors_raise(empty) -> None:
    with pytest.raises(ValueError, match="empty"):
        summarize_errors(empty)
    with pytest.raises(ValueError, match="empty"):
        accuracy_within(empty, DEFAULT_THRESHOLDS_KM)


def test_empty_predictions_raise() -> None:
    with pytest.raises(ValueError, match="empty"):
        evaluate_predictions([], [], [], [])


def test_nan_errors_raise_with_count() -> None:
    with pytest.raises(ValueError, match="2 of 4 errors are NaN"):
        summarize_errors([1.0, np.nan, 3.0, np.nan])


@pytest.mark.parametrize("bad", [-1.0, np.inf])
def test_negative_or_infinite_errors_raise(bad: float) -> None:
    message = "1 of 3 errors are negative or infinite; first at index 1"
    with pytest.raises(ValueError, match=message):
        summarize_errors([1.0, bad, 3.0])


@pytest.mark.parametrize(
    "thresholds", [(25, 1, 200), (1, 25, 25), (0, 25), (-1, 25), (1, np.inf), (1, np.nan)]
)
def test_invalid_thresholds_raise(thresholds) -> None:
    with pytest.raises(ValueError, match="thresholds must be"):
        summarize_errors([1.0], thresholds_km=thresholds)


def test_out_of_range_coordinates_raise() -> None:
    with pytest.raises(ValueError, match=r"lat2 has 1 value\(s\) outside \[-90, 90\]"):
        evaluate_predictions([0.0], [0.0], [95.0], [0.0])
    with pytest.raises(ValueError, match=r"lon1 has 1 value\(s\) outside \[-180, 180\]"):
        evaluate_predictions([0.0], [181.0], [0.0], [0.0])
    with pytest.raises(ValueError, match=r"lat1 has 1 NaN"):
        evaluate_predictions([np.nan], [0.0], [0.0], [0.0])


def test_unknown_method_raises() -> None:
    with pytest.raises(ValueError, match="unknown distance method"):
        evaluate_predictions([0.0], [0.0], [1.0], [1.0], method="flat")  # type: ignore[arg-type]
