"""Step: the confidence calibration, fitted on the calibration benchmark's own decisions.

The decisions are taken again here by the same function the verification step uses
(steps/verification.py: decide_benchmark), from the same files, so the calibration needs no
predictions file and the verification step can apply it to every benchmark, the calibration
benchmark included (there out of sample, by cross-fitting). Errors are measured as the metrics
measure them (evaluation.distance).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from geoloc_core.confidence.calibration import Calibration, calibrate
from geoloc_core.confidence.features import confidence_features
from geoloc_core.confidence.model import CalibrationError
from geoloc_core.confidence.settings import ConfidenceSettings
from geoloc_core.data.manifest import read_manifest
from geoloc_core.geo.distance import distance_km
from geoloc_core.paths import ProjectPaths, radius_column
from geoloc_core.steps.verification import decide_benchmark
from geoloc_core.verification.settings import VerificationSettings


def calibrate_benchmark(
    paths: ProjectPaths,
    confidence_section: Mapping[str, Any],
    verification_section: Mapping[str, Any],
    evaluation_section: Mapping[str, Any],
) -> tuple[Calibration, dict[str, Any]]:
    """Fit and write the calibration; returns it and its summary (coverages per level: in
    sample for the whole model, out of sample for the cross-fitted radii)."""
    settings = ConfidenceSettings.from_section(confidence_section)
    benchmark = settings.benchmark
    if not paths.reranked(benchmark).is_file():
        raise FileNotFoundError(
            f"confidence.benchmark {benchmark!r} has no re-ranked candidates at "
            f"{paths.reranked(benchmark)}: it must be one of benchmarks.names, materialized "
            "up to its re-rank"
        )
    decided = decide_benchmark(
        paths, benchmark, VerificationSettings.from_section(verification_section)
    )
    if decided is None:
        raise CalibrationError(
            f"confidence.benchmark {benchmark!r} has no queries: calibrate on a benchmark "
            "with decisions (validation)"
        )
    truth = read_manifest(paths.benchmark_manifest(benchmark)).set_index("id").loc[decided.ids]
    errors = distance_km(
        truth["lat"].to_numpy(np.float64),
        truth["lon"].to_numpy(np.float64),
        decided.decision.latlon[:, 0],
        decided.decision.latlon[:, 1],
        method=evaluation_section["distance"],
    )
    features = confidence_features(
        decided.pool, decided.decision, settings.top_m, settings.agree_km
    )
    calibration = calibrate(settings, decided.ids, features, errors)
    calibration.write(paths.confidence_calibration)
    held_out = calibration.radii(features, calibration.levels, decided.ids)
    whole = calibration.radii(features, calibration.levels)
    summary: dict[str, Any] = {"benchmark": benchmark, "queries": len(decided.ids)}
    for level in calibration.levels:
        name = radius_column(level).removeprefix("radius_").removesuffix("_km")
        summary[f"coverage_{name}_cross_fitted"] = _share(errors <= held_out[level])
        summary[f"coverage_{name}_in_sample"] = _share(errors <= whole[level])
        summary[f"median_radius_{name}_km"] = round(float(np.median(held_out[level])), 3)
    return calibration, summary


def _share(hits: np.ndarray) -> float:
    return round(float(hits.mean()), 4)
