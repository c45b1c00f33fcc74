"""Every run a benchmark's report compares: our stages and the baselines, with their numbers.

The table's numbers come from the metrics files the evaluation wrote (the numbers DVC and
MLflow track); the per-image errors behind the curves are recomputed here from the same
prediction files with the same distance, so a curve and its table row cannot disagree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geoloc_core.geo.distance import distance_km
from geoloc_core.paths import ProjectPaths
from geoloc_core.report.labels import NOT_APPLIED, SETTING_COLUMNS, RunSetting, stage_label
from geoloc_core.report.stage_columns import STAGE_COLUMNS

STAGE_KEYS: dict[str, str] = {"retrieval": "retrieval_top1", "rerank": "rerank"}


@dataclass(frozen=True)
class RunResult:
    """One compared run on one benchmark."""

    key: str  # machine name, used as a column of the plot data: decision, retrieval_top1, ...
    label: str  # row label in the tables
    kind: str  # "ours" or "baseline"
    summary: Mapping[str, Any]  # acc_<t>km, median_km, n as the metrics file holds them
    errors: np.ndarray | None  # per-image km; None when only the summary exists
    setting: Mapping[str, str] = field(default_factory=dict)
    source: str = ""

    def accuracy(self, threshold_km: float) -> float | None:
        value = self.summary.get(f"acc_{threshold_km:g}km")
        return None if value is None else float(value)


def errors_file(paths: ProjectPaths, benchmark: str) -> Path:
    return paths.artifacts / "errors" / f"{benchmark}.csv"


def baselines_file(paths: ProjectPaths, benchmark: str) -> Path:
    return paths.root / "metrics" / "baselines" / f"{benchmark}.json"


def baseline_predictions_file(paths: ProjectPaths, benchmark: str, method: str) -> Path:
    """Same layout as geoloc_core.steps.baselines writes (not imported: it loads torch)."""
    return paths.artifacts / "baselines" / benchmark / f"{method}.csv"


def _errors(table: pd.DataFrame, lat: str, lon: str, distance: str) -> np.ndarray:
    return distance_km(
        table["lat"].to_numpy(np.float64),
        table["lon"].to_numpy(np.float64),
        table[lat].to_numpy(np.float64),
        table[lon].to_numpy(np.float64),
        method=distance,
    )


def read_metrics(paths: ProjectPaths, benchmark: str) -> dict[str, Any]:
    source = paths.metrics(benchmark)
    if not source.is_file():
        raise FileNotFoundError(f"{source} is missing: materialize metrics[{benchmark}] first")
    return json.loads(source.read_text())


def our_runs(
    paths: ProjectPaths, benchmark: str, setting: RunSetting, distance: str
) -> list[RunResult]:
    """Retrieval top-1, + re-rank, and the decision, in pipeline order."""
    metrics = read_metrics(paths, benchmark)
    predictions_file = paths.predictions(benchmark)
    if not predictions_file.is_file():
        raise FileNotFoundError(f"{predictions_file} is missing: materialize verification first")
    predictions = pd.read_csv(predictions_file)
    source = str(paths.metrics(benchmark).relative_to(paths.root))
    stages = metrics.get("stages", {})
    order = [s for s in STAGE_COLUMNS if s in stages] + sorted(set(stages) - set(STAGE_COLUMNS))
    runs = []
    for stage in order:
        values = stages[stage]
        lat, lon = STAGE_COLUMNS.get(stage, (f"{stage}_lat", f"{stage}_lon"))
        errors = _errors(predictions, lat, lon, distance) if lat in predictions else None
        runs.append(
            RunResult(
                key=STAGE_KEYS.get(stage, stage),
                label=stage_label(stage, setting),
                kind="ours",
                summary=values,
                errors=errors,
                setting=setting.cells(stage),
                source=f"{source} (stages.{stage})",
            )
        )
    decision_errors = errors_file(paths, benchmark)
    if not decision_errors.is_file():
        raise FileNotFoundError(f"{decision_errors} is missing: materialize metrics first")
    runs.append(
        RunResult(
            key="decision",
            label=stage_label("decision", setting),
            kind="ours",
            summary={k: v for k, v in metrics.items() if k != "stages"},
            errors=pd.read_csv(decision_errors)["error_km"].to_numpy(np.float64),
            setting=setting.cells("decision"),
            source=source,
        )
    )
    return runs


def baseline_runs(paths: ProjectPaths, benchmark: str, distance: str) -> list[RunResult]:
    """The simple baselines, with per-image errors where their predictions were kept."""
    summary_file = baselines_file(paths, benchmark)
    if not summary_file.is_file():
        return []
    source = str(summary_file.relative_to(paths.root))
    runs = []
    for method, values in sorted(json.loads(summary_file.read_text()).items()):
        table_file = baseline_predictions_file(paths, benchmark, method)
        errors = None
        if table_file.is_file():
            errors = _errors(pd.read_csv(table_file), "pred_lat", "pred_lon", distance)
        runs.append(
            RunResult(
                key=f"baseline_{method}",
                label=f"baseline: {method}",
                kind="baseline",
                summary=values,
                errors=errors,
                setting=dict.fromkeys(SETTING_COLUMNS, NOT_APPLIED),
                source=source,
            )
        )
    return runs


def benchmark_runs(
    paths: ProjectPaths, benchmark: str, setting: RunSetting, distance: str
) -> list[RunResult]:
    return our_runs(paths, benchmark, setting, distance) + baseline_runs(paths, benchmark, distance)
