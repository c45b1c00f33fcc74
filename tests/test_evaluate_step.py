"""The evaluate step against its predictions file: every number in metrics/<benchmark>.json and
every row of the errors file, recomputed here independently with geopy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from geopy.distance import geodesic, great_circle

from geoloc_core.paths import ProjectPaths
from geoloc_core.steps.evaluate import evaluate_benchmark, flat_metrics

BENCHMARK = "demo-street"
THRESHOLDS = [1, 25, 200, 750, 2500]
GEODESIC = {"thresholds_km": THRESHOLDS, "distance": "geodesic"}
MEAN_EARTH_RADIUS_KM = 6371.0088

# (truth, decision, retrieval top-1, re-rank): errors from 0 km to the far side of the world
ROWS = [
    ((48.8566, 2.3522), (48.8566, 2.3522), (48.86, 2.35), (48.8566, 2.3522)),  # exact
    ((48.8566, 2.3522), (48.90, 2.40), (50.0, 5.0), (48.90, 2.40)),  # ~6 km
    ((-33.8688, 151.2093), (-34.9285, 138.6007), (-37.8136, 144.9631), (-33.0, 151.0)),
    ((35.6762, 139.6503), (37.5665, 126.9780), (35.0, 135.0), (34.69, 135.5)),
    ((40.7128, -74.0060), (51.5074, -0.1278), (40.0, -75.0), (40.7, -74.0)),
    ((0.0, 0.0), (0.0, 180.0), (10.0, 10.0), (0.0, 179.0)),  # antipodes, ~20,000 km
]


def write_predictions(root: Path, rows=ROWS, stages: bool = True) -> pd.DataFrame:
    """A predictions file in the columns the verification step writes."""
    table = pd.DataFrame(
        {
            "id": [f"q{i}" for i in range(len(rows))],
            "lat": [r[0][0] for r in rows],
            "lon": [r[0][1] for r in rows],
            "pred_lat": [r[1][0] for r in rows],
            "pred_lon": [r[1][1] for r in rows],
        }
    )
    if stages:
        table["top1_lat"], table["top1_lon"] = [r[2][0] for r in rows], [r[2][1] for r in rows]
        table["rerank_lat"], table["rerank_lon"] = [r[3][0] for r in rows], [r[3][1] for r in rows]
    target = ProjectPaths(root).predictions(BENCHMARK)
    target.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(target, index=False)
    return table


def expected_metrics(errors: list[float]) -> dict[str, float]:
    """Strictly-below accuracies in percent, median, mean and count, by plain Python."""
    ordered = sorted(errors)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    scores = {f"acc_{t}km": 100.0 * sum(e < t for e in errors) / len(errors) for t in THRESHOLDS}
    return {**scores, "median_km": median, "mean_km": sum(errors) / len(errors), "n": len(errors)}


def geopy_errors(table: pd.DataFrame, lat: str, lon: str, method=geodesic) -> list[float]:
    extra = {"radius": MEAN_EARTH_RADIUS_KM} if method is great_circle else {}
    return [
        method((t_lat, t_lon), (p_lat, p_lon), **extra).km
        for t_lat, t_lon, p_lat, p_lon in zip(
            table["lat"], table["lon"], table[lat], table[lon], strict=True
        )
    ]


def assert_metrics(found: dict, expected: dict) -> None:
    """The file rounds to 4 decimals; the count is exact."""
    assert set(found) - {"stages"} == set(expected)
    assert found["n"] == expected["n"] and isinstance(found["n"], int)
    for key, value in expected.items():
        assert found[key] == pytest.approx(value, abs=5.1e-5), key


def test_metrics_and_errors_follow_the_predictions(tmp_path: Path) -> None:
    table = write_predictions(tmp_path)
    returned = evaluate_benchmark(ProjectPaths(tmp_path), BENCHMARK, GEODESIC)
    on_disk = json.loads(ProjectPaths(tmp_path).metrics(BENCHMARK).read_text())
    assert on_disk == returned

    decision = geopy_errors(table, "pred_lat", "pred_lon")
    assert_metrics(on_disk, expected_metrics(decision))
    assert [on_disk[f"acc_{t}km"] for t in THRESHOLDS] == pytest.approx(
        [100 / 6, 200 / 6, 200 / 6, 200 / 6, 400 / 6], abs=1e-4
    )  # by hand: 0 km | ~6 km | ~1,100-1,200 km twice | ~5,600 and ~20,000 km
    assert set(on_disk["stages"]) == {"retrieval", "rerank"}
    columns = {"retrieval": ("top1_lat", "top1_lon"), "rerank": ("rerank_lat", "rerank_lon")}
    for stage, (lat, lon) in columns.items():
        assert_metrics(on_disk["stages"][stage], expected_metrics(geopy_errors(table, lat, lon)))

    errors = pd.read_csv(tmp_path / "artifacts" / "errors" / f"{BENCHMARK}.csv")
    assert list(errors.columns) == ["id", "error_km"]
    assert errors["id"].tolist() == table["id"].tolist()
    np.testing.assert_allclose(errors["error_km"], decision, rtol=0, atol=5.1e-5)


def test_haversine_setting_measures_on_the_sphere(tmp_path: Path) -> None:
    table = write_predictions(tmp_path, stages=False)
    section = {"thresholds_km": THRESHOLDS, "distance": "haversine"}
    metrics = evaluate_benchmark(ProjectPaths(tmp_path), BENCHMARK, section)
    sphere = geopy_errors(table, "pred_lat", "pred_lon", great_circle)
    assert_metrics(metrics, expected_metrics(sphere))
    ellipsoid = expected_metrics(geopy_errors(table, "pred_lat", "pred_lon"))
    assert abs(metrics["mean_km"] - ellipsoid["mean_km"]) > 1.0  # the sphere, not the ellipsoid
    assert "stages" not in metrics  # no stage columns, no stage rows


def test_other_thresholds_name_their_keys(tmp_path: Path) -> None:
    write_predictions(tmp_path, stages=False)
    section = {"thresholds_km": [10, 5000], "distance": "geodesic"}
    metrics = evaluate_benchmark(ProjectPaths(tmp_path), BENCHMARK, section)
    assert metrics["acc_10km"] == pytest.approx(200 / 6, abs=1e-4)
    assert metrics["acc_5000km"] == pytest.approx(400 / 6, abs=1e-4)
    assert "acc_25km" not in metrics


def test_missing_predictions_name_the_asset(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"materialize predictions\[demo-street\]"):
        evaluate_benchmark(ProjectPaths(tmp_path), BENCHMARK, GEODESIC)
    assert not ProjectPaths(tmp_path).metrics(BENCHMARK).exists()


def test_bad_predicted_coordinates_raise_and_write_nothing(tmp_path: Path) -> None:
    write_predictions(tmp_path, rows=[((0.0, 0.0), (91.0, 0.0), (0.0, 0.0), (0.0, 0.0))])
    with pytest.raises(ValueError, match=r"lat2 has 1 value\(s\) outside \[-90, 90\]"):
        evaluate_benchmark(ProjectPaths(tmp_path), BENCHMARK, GEODESIC)
    assert not ProjectPaths(tmp_path).metrics(BENCHMARK).exists()


def test_flat_metrics_prefix_the_stages() -> None:
    metrics = {"acc_1km": 10.0, "n": 3, "stages": {"rerank": {"acc_1km": 5.0, "n": 3}}}
    assert flat_metrics(metrics) == {
        "acc_1km": 10.0,
        "n": 3,
        "stage_rerank.acc_1km": 5.0,
        "stage_rerank.n": 3,
    }
