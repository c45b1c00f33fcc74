"""Step: predictions -> accuracy at the distance thresholds, written as metrics/<benchmark>.json.

A benchmark with no prediction (its data set absent) gets `n: 0`, the reason under `skipped`
and no accuracy, median or mean at all: none of them is 0, they do not exist.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from geoloc_core.geo.distance import distance_km
from geoloc_core.geo.metrics import summarize_errors
from geoloc_core.paths import ERROR_COLUMNS, STAGE_COLUMNS, ProjectPaths, radius_level


def evaluate_benchmark(
    paths: ProjectPaths, benchmark: str, evaluation_section: Mapping[str, Any]
) -> dict[str, Any]:
    source = paths.predictions(benchmark)
    if not source.is_file():
        raise FileNotFoundError(f"{source} is missing: materialize predictions[{benchmark}] first")
    table = pd.read_csv(source)
    if table.empty:
        return _no_predictions(paths, benchmark, table)
    errors = column_errors(table, "pred_lat", "pred_lon", evaluation_section)
    rounded = rounded_summary(errors, evaluation_section)
    stages = {}
    for stage, (lat, lon) in STAGE_COLUMNS.items():
        if lat in table.columns:
            stage_errors = column_errors(table, lat, lon, evaluation_section)
            stages[stage] = rounded_summary(stage_errors, evaluation_section)
    if stages:
        rounded["stages"] = stages
    confidence = coverage_summary(table, errors)
    if confidence:
        rounded["confidence"] = confidence
    _write(paths, benchmark, rounded, pd.DataFrame({"id": table["id"], "error_km": errors}))
    return rounded


def _no_predictions(paths: ProjectPaths, benchmark: str, table: pd.DataFrame) -> dict[str, Any]:
    """n = 0 and why, for the run and each stage; an empty errors file with its columns."""
    from geoloc_core.steps.manifests import skipped_reason  # the gate's modules: only here

    reason = skipped_reason(paths, benchmark) or f"benchmark {benchmark} has no queries"
    metrics: dict[str, Any] = {"n": 0, "skipped": reason}
    stages = {stage: {"n": 0} for stage, (lat, _) in STAGE_COLUMNS.items() if lat in table}
    if stages:
        metrics["stages"] = stages
    _write(paths, benchmark, metrics, pd.DataFrame(columns=list(ERROR_COLUMNS)))
    return metrics


def _write(
    paths: ProjectPaths, benchmark: str, metrics: Mapping[str, Any], errors: pd.DataFrame
) -> None:
    target = paths.metrics(benchmark)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    errors_file = paths.errors(benchmark)
    errors_file.parent.mkdir(parents=True, exist_ok=True)
    errors.to_csv(errors_file, index=False, float_format="%.4f", lineterminator="\n")


def column_errors(
    table: pd.DataFrame, lat: str, lon: str, evaluation_section: Mapping[str, Any]
) -> np.ndarray:
    """Each row's error in km: the prediction in columns (lat, lon) against its true lat, lon,
    by the configured distance. The benchmark's metrics and the baselines' share it."""
    return distance_km(
        table["lat"].to_numpy(),
        table["lon"].to_numpy(),
        table[lat].to_numpy(),
        table[lon].to_numpy(),
        method=evaluation_section["distance"],
    )


def rounded_summary(errors: np.ndarray, evaluation_section: Mapping[str, Any]) -> dict[str, Any]:
    """Accuracy at the configured thresholds, median and mean, floats to 4 decimals."""
    metrics = summarize_errors(errors, tuple(evaluation_section["thresholds_km"]))
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()}


def coverage_summary(table: pd.DataFrame, errors: np.ndarray) -> dict[str, float]:
    """Per stated level of the predictions' confidence radii (radius_<pct>_km columns): the
    share of decisions whose truth lies within the radius (error <= radius), and the median
    radius. Empty when the predictions carry no radii."""
    summary: dict[str, float] = {}
    for column in table.columns:
        level = radius_level(str(column))
        if level is None:
            continue
        radius = table[column].to_numpy(np.float64)
        pct = f"{level * 100:g}"
        summary[f"coverage_{pct}"] = round(float((errors <= radius).mean()), 4)
        summary[f"median_radius_{pct}_km"] = round(float(np.median(radius)), 3)
    return summary


def flat_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The metrics file as MLflow metrics: stages become 'stage_<name>.<metric>', the
    confidence radii's coverage 'confidence.<metric>'."""
    flat = {k: v for k, v in metrics.items() if not isinstance(v, Mapping)}
    for stage, values in metrics.get("stages", {}).items():
        flat.update({f"stage_{stage}.{k}": v for k, v in values.items()})
    flat.update({f"confidence.{k}": v for k, v in metrics.get("confidence", {}).items()})
    return flat
