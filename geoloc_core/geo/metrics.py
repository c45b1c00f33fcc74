"""Standard geolocation scores: accuracy within distance thresholds, median and mean error.

The thresholds are the street / city / region / country / continent scales used across the
image-geolocation literature (Im2GPS, YFCC, OSV-5M), so results stay comparable to papers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike

from geoloc_core.geo.distance import DistanceMethod, distance_km

DEFAULT_THRESHOLDS_KM: tuple[float, ...] = (1, 25, 200, 750, 2500)

# A safe subset of the characters MLflow allows in metric names; "@" (as in "acc@25km") is not.
_METRIC_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.\- /]+$")


def accuracy_metric_name(threshold_km: float) -> str:
    """Metric key for one threshold, e.g. 25 -> "acc_25km"; checked to be MLflow-safe."""
    name = f"acc_{threshold_km:g}km"
    if not _METRIC_NAME_PATTERN.match(name):
        raise ValueError(
            f"threshold {threshold_km!r} gives {name!r}, not a valid MLflow metric name"
        )
    return name


def _validated_errors(errors_km: ArrayLike) -> np.ndarray:
    """Flatten errors to 1-D, rejecting an empty benchmark and NaN / negative / infinite values."""
    errors = np.ravel(np.asarray(errors_km, dtype=np.float64))
    if errors.size == 0:
        raise ValueError("no errors to summarize: an empty evaluation set is a bug, not 0 %")
    nan_count = int(np.isnan(errors).sum())
    if nan_count:
        raise ValueError(f"{nan_count} of {errors.size} errors are NaN")
    invalid = ~((errors >= 0.0) & np.isfinite(errors))
    if invalid.any():
        first = int(np.argmax(invalid))
        raise ValueError(
            f"{int(invalid.sum())} of {errors.size} errors are negative or infinite; "
            f"first at index {first}: {float(errors[first])!r}"
        )
    return errors


def _validated_thresholds(thresholds_km: Sequence[float]) -> tuple[float, ...]:
    """Thresholds must be positive, finite and strictly ascending so metric keys are unique."""
    thresholds = tuple(float(t) for t in thresholds_km)
    if any(not (np.isfinite(t) and t > 0.0) for t in thresholds):
        raise ValueError(f"thresholds must be positive and finite, got {thresholds}")
    if any(lower >= upper for lower, upper in pairwise(thresholds)):
        raise ValueError(f"thresholds must be strictly ascending, got {thresholds}")
    return thresholds


def accuracy_within(
    errors_km: ArrayLike, thresholds_km: Sequence[float] = DEFAULT_THRESHOLDS_KM
) -> dict[float, float]:
    """Percent of errors strictly below each threshold (an error of exactly 25 km misses 25 km).

    The comparison is fixed once here so every run scores boundary cases the same way.
    """
    errors = _validated_errors(errors_km)
    thresholds = _validated_thresholds(thresholds_km)
    return {t: 100.0 * float(np.count_nonzero(errors < t)) / errors.size for t in thresholds}


@dataclass(frozen=True)
class GeoMetrics:
    """Summary of one evaluation run; immutable so a logged result cannot drift afterwards."""

    accuracy_pct: Mapping[float, float]
    median_km: float
    mean_km: float
    n: int

    @classmethod
    def from_errors(
        cls, errors_km: ArrayLike, thresholds_km: Sequence[float] = DEFAULT_THRESHOLDS_KM
    ) -> GeoMetrics:
        """Compute all scores from per-sample errors in km."""
        errors = _validated_errors(errors_km)
        return cls(
            accuracy_pct=MappingProxyType(accuracy_within(errors, thresholds_km)),
            median_km=float(np.median(errors)),
            mean_km=float(np.mean(errors)),
            n=int(errors.size),
        )

    def as_dict(self) -> dict[str, float | int]:
        """Flat metric names ready for a tracker: acc_{t}km, median_km, mean_km, n."""
        metrics: dict[str, float | int] = {
            accuracy_metric_name(t): pct for t, pct in self.accuracy_pct.items()
        }
        metrics.update(median_km=self.median_km, mean_km=self.mean_km, n=self.n)
        return metrics


def summarize_errors(
    errors_km: ArrayLike, thresholds_km: Sequence[float] = DEFAULT_THRESHOLDS_KM
) -> dict[str, float | int]:
    """Flat dict of accuracy percentages, median/mean error in km and sample count."""
    return GeoMetrics.from_errors(errors_km, thresholds_km).as_dict()


def evaluate_predictions(
    true_lat: ArrayLike,
    true_lon: ArrayLike,
    pred_lat: ArrayLike,
    pred_lon: ArrayLike,
    thresholds_km: Sequence[float] = DEFAULT_THRESHOLDS_KM,
    method: DistanceMethod = "geodesic",
) -> dict[str, float | int]:
    """Score predicted coordinates against the truth (degrees) in one call."""
    errors = distance_km(true_lat, true_lon, pred_lat, pred_lon, method=method)
    return summarize_errors(errors, thresholds_km)
