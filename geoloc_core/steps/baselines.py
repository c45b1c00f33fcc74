"""Step: score the simple baselines on one benchmark, as metrics/baselines/<benchmark>.json.

Every baseline guesses one reference image's coordinates per query; a trained model's numbers
mean something only next to these. Queries whose input cannot be read (an undecodable image,
an image the caches failed on) are counted as `failed` and left out of the scores, as the
trained model's predictions step does; `n` is the number of queries scored. A benchmark with
no query (its data set absent) gets empty tables and `n: 0` with no score.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from geoloc_core.baselines import METHODS
from geoloc_core.baselines.colour_features import ColourFeatureSource
from geoloc_core.baselines.nearest import (
    BaselinePrediction,
    HistogramSource,
    PooledEmbeddingSource,
    VectorSource,
    predict_nearest,
    predict_random,
)
from geoloc_core.baselines.settings import BaselineSettings
from geoloc_core.data.manifest import read_manifest, write_manifest
from geoloc_core.paths import BASELINE_COLUMNS, ProjectPaths
from geoloc_core.steps.evaluate import column_errors, rounded_summary


def compute_baselines(
    paths: ProjectPaths,
    benchmark: str,
    baselines_section: Mapping[str, Any],
    evaluation_section: Mapping[str, Any],
) -> dict[str, Any]:
    """Predict, score and write every enabled baseline; a flat summary for MLflow."""
    settings = BaselineSettings.from_section(baselines_section)
    reference = read_manifest(paths.reference_manifest)
    reference = reference[reference["split"] == "reference"].reset_index(drop=True)
    if reference.empty:
        raise ValueError(f"{paths.reference_manifest} has no rows of split 'reference'")
    queries = read_manifest(paths.benchmark_manifest(benchmark))
    if queries.empty:
        results = _no_queries(paths, benchmark, settings.methods)
    else:
        results = {}
        for method in settings.methods:
            prediction = _predict(method, paths, settings, queries, reference, benchmark)
            table = _prediction_table(queries, reference, prediction)
            _write_tables(paths, benchmark, method, table, prediction.failures)
            results[method] = _score(method, benchmark, table, prediction, evaluation_section)
    target = paths.baseline_metrics(benchmark)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return {f"{m}.{k}": v for m, scores in results.items() for k, v in scores.items()}


def _no_queries(
    paths: ProjectPaths, benchmark: str, methods: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    """An empty benchmark (its data set absent): empty tables and n = 0, no score."""
    for method in methods:
        _write_tables(paths, benchmark, method, pd.DataFrame(columns=list(BASELINE_COLUMNS)), {})
    return {method: {"n": 0, "skipped": "the benchmark has no queries"} for method in methods}


def _predict(
    method: str,
    paths: ProjectPaths,
    settings: BaselineSettings,
    queries: pd.DataFrame,
    reference: pd.DataFrame,
    benchmark: str,
) -> BaselinePrediction:
    if method == "random":
        return predict_random(len(queries), len(reference), settings.seed)
    return predict_nearest(
        queries["id"].to_numpy(),
        queries["image"].to_numpy(),
        reference["id"].to_numpy(),
        reference["image"].to_numpy(),
        _source(method, paths, settings),
        settings.batch_size,
        desc=f"{method} {benchmark}",
    )


def _source(method: str, paths: ProjectPaths, settings: BaselineSettings) -> VectorSource:
    """The vectors a 1-NN baseline compares; each cache is opened only when asked for."""
    if method == "raw_pixels":
        return ColourFeatureSource(paths.root, settings.image_size)
    if method == "label_histogram":
        from geoloc_core.segmentation.cache import SegmentationCache

        return HistogramSource(SegmentationCache(paths.segmentation_dir))
    if method == "frozen_backbone":
        from geoloc_core.training.feature_cache import FeatureCache

        return PooledEmbeddingSource(FeatureCache(paths.features_dir))
    raise ValueError(f"no vector source for baseline {method!r}; allowed: {list(METHODS)}")


def _prediction_table(
    queries: pd.DataFrame, reference: pd.DataFrame, prediction: BaselinePrediction
) -> pd.DataFrame:
    rows = queries.iloc[prediction.query_positions]
    guessed = reference.iloc[prediction.reference_positions]
    return pd.DataFrame(
        {
            "id": rows["id"].to_numpy(),
            "lat": rows["lat"].to_numpy(np.float64),
            "lon": rows["lon"].to_numpy(np.float64),
            "pred_lat": guessed["lat"].to_numpy(np.float64),
            "pred_lon": guessed["lon"].to_numpy(np.float64),
            "neighbour": guessed["id"].to_numpy(),  # the reference image whose place was guessed
        }
    )


def _write_tables(
    paths: ProjectPaths,
    benchmark: str,
    method: str,
    table: pd.DataFrame,
    failures: Mapping[str, str],
) -> None:
    write_manifest(table, paths.baseline_predictions(benchmark, method))
    failed = pd.DataFrame({"id": list(failures), "reason": list(failures.values())})
    write_manifest(failed, paths.baseline_failures(benchmark, method))


def _score(
    method: str,
    benchmark: str,
    table: pd.DataFrame,
    prediction: BaselinePrediction,
    evaluation_section: Mapping[str, Any],
) -> dict[str, Any]:
    if table.empty:
        reasons = "; ".join(list(prediction.failures.values())[:3])
        raise ValueError(
            f"baseline {method} on '{benchmark}': all {len(prediction.failures)} queries "
            f"failed, e.g. {reasons}"
        )
    errors = column_errors(table, "pred_lat", "pred_lon", evaluation_section)
    rounded = rounded_summary(errors, evaluation_section)
    return {
        **rounded,
        "failed": len(prediction.failures),
        "reference_failed": prediction.reference_failed,
    }
