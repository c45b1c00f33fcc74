"""The confidence model: a difficulty score, groups of equal size by it, and per group the
conformal quantiles of the error at a grid of levels.

Fitting, on the calibration benchmark's queries (features x, errors e in km):
1. difficulty d(x): least squares of log(1 + e) on the standardised features (an intercept
   and one weight each): the features' combination that best predicts how wrong a decision is;
2. the queries sorted by d are cut into `groups` of equal size;
3. per group of n queries, the radius at level q is its ceil((n + 1) q)-th smallest error
   (the split-conformal quantile: a new query exchangeable with the group's is within it with
   probability at least q);
   (with too few queries for a level, the whole Earth: conformal_quantile);
4. a harder group never gets a smaller radius than an easier one (a running maximum over the
   groups in difficulty order), so the radius is a monotone step function of d.

Everything is deterministic (no random state): the same queries give the same model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

# half the equator (WGS-84, rounded up): no two points on Earth are farther apart
WHOLE_EARTH_KM = 20_038.0
# the reliability curve's levels; the stated levels join them
CURVE_LEVELS = tuple(round(0.05 * i, 2) for i in range(1, 20))


class CalibrationError(ValueError):
    """Too few queries for the requested calibration; the message says which setting to lower."""


@dataclass(frozen=True)
class RadiusModel:
    feature_names: tuple[str, ...]
    centre: np.ndarray  # (f,) feature means
    scale: np.ndarray  # (f,) feature standard deviations (1 where constant)
    weights: np.ndarray  # (f,) difficulty weights on the standardised features
    intercept: float
    cuts: np.ndarray  # (groups - 1,) difficulty boundaries between groups
    levels: np.ndarray  # (L,) ascending
    radii: np.ndarray  # (groups, L) km, ascending along both axes
    counts: np.ndarray  # (groups,) calibration queries per group

    def difficulty(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.centre) / self.scale) @ self.weights + self.intercept

    def group(self, features: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.cuts, self.difficulty(features), side="right")

    def radius(self, features: np.ndarray, level: float) -> np.ndarray:
        """(n,) km: the radius that holds the truth with probability `level`."""
        return self.radii[self.group(features), _level_index(self.levels, level)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature_names": list(self.feature_names),
            "centre": self.centre.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "intercept": self.intercept,
            "cuts": self.cuts.tolist(),
            "levels": self.levels.tolist(),
            "radii_km": self.radii.tolist(),
            "counts": self.counts.tolist(),
        }

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> RadiusModel:
        return cls(
            tuple(record["feature_names"]),
            np.asarray(record["centre"], np.float64),
            np.asarray(record["scale"], np.float64),
            np.asarray(record["weights"], np.float64),
            float(record["intercept"]),
            np.asarray(record["cuts"], np.float64),
            np.asarray(record["levels"], np.float64),
            np.asarray(record["radii_km"], np.float64).reshape(len(record["counts"]), -1),
            np.asarray(record["counts"], np.int64),
        )


def _level_index(levels: np.ndarray, level: float) -> int:
    hit = np.flatnonzero(np.isclose(levels, level))
    if not len(hit):
        raise ValueError(f"no radius for level {level}: the model has {levels.tolist()}")
    return int(hit[0])


def conformal_quantile(sorted_errors: np.ndarray, level: float) -> float:
    """The ceil((n + 1) level)-th smallest of n sorted errors. Where that rank is beyond n (too
    few queries to state the level) the conformal radius is unbounded: it is then the largest
    distance on Earth, which holds every truth."""
    n = len(sorted_errors)
    rank = math.ceil((n + 1) * level - 1e-9)
    if rank > n:
        return WHOLE_EARTH_KM
    return float(sorted_errors[rank - 1])


def fit_radius_model(
    features: np.ndarray,
    errors_km: np.ndarray,
    feature_names: Sequence[str],
    groups: int,
    levels: Sequence[float],
) -> RadiusModel:
    """The model fitted on (n, f) features and their n errors (km)."""
    features = np.asarray(features, np.float64)
    errors_km = np.asarray(errors_km, np.float64)
    n = len(errors_km)
    if features.shape != (n, len(feature_names)):
        raise ValueError(f"features {features.shape} for {n} errors and {len(feature_names)} names")
    if not np.isfinite(features).all() or not np.isfinite(errors_km).all():
        raise ValueError("the calibration's features and errors must be finite numbers")
    if n < groups:
        raise CalibrationError(
            f"{n} calibration queries for confidence.groups={groups}: lower the groups"
        )
    grid = np.array(sorted({*CURVE_LEVELS, *(round(float(q), 6) for q in levels)}))
    centre = features.mean(axis=0)
    spread = features.std(axis=0)
    scale = np.where(spread > 0, spread, 1.0)
    design = np.column_stack([np.ones(n), (features - centre) / scale])
    solution, *_ = np.linalg.lstsq(design, np.log1p(errors_km), rcond=None)
    intercept, weights = float(solution[0]), solution[1:]
    difficulty = design[:, 1:] @ weights + intercept
    order = np.argsort(difficulty, kind="stable")
    members = np.array_split(order, groups)  # equal sizes, easiest first
    cuts = np.array(
        [(difficulty[a[-1]] + difficulty[b[0]]) / 2 for a, b in pairwise(members)]
    )
    radii = np.array(
        [[conformal_quantile(np.sort(errors_km[m]), q) for q in grid] for m in members]
    )
    radii = np.maximum.accumulate(radii, axis=0)  # a harder group: never a smaller radius
    return RadiusModel(
        tuple(feature_names),
        centre,
        scale,
        weights,
        intercept,
        cuts,
        grid,
        radii,
        np.array([len(m) for m in members]),
    )
