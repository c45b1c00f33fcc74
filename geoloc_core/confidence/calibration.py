"""The calibration file: the confidence model fitted on the calibration benchmark, and the
models that give that benchmark's own queries their radii honestly (cross-fitting).

A query of the calibration benchmark belongs to fold hash(id) mod `folds`; its radii come from
the model fitted on the other folds, so its coverage there is measured out of sample like
everywhere else. Every other query (another benchmark, `geoloc predict`, the served model)
gets the model fitted on all of them. The file records the features' own settings (top_m,
agree_km), so whoever applies it computes the same features.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geoloc_core.confidence.features import (
    FEATURE_NAMES,
    ConfidenceFeatures,
    confidence_features,
)
from geoloc_core.confidence.model import RadiusModel, fit_radius_model
from geoloc_core.confidence.settings import ConfidenceSettings
from geoloc_core.inference.decision import Decision
from geoloc_core.inference.pool import CandidatePool

FORMAT = "geoloc-confidence/1"


def fold_of(query_ids: Sequence[str], folds: int) -> np.ndarray:
    """(n,) the cross-fitting fold of each query id: a stable hash, the same in every run."""
    return np.array(
        [int(hashlib.sha256(str(q).encode()).hexdigest()[:12], 16) % folds for q in query_ids],
        np.int64,
    )


@dataclass(frozen=True)
class Calibration:
    benchmark: str
    levels: tuple[float, ...]  # the stated coverages
    top_m: int
    agree_km: float
    model: RadiusModel  # fitted on every query of the benchmark
    fold_models: tuple[RadiusModel, ...]  # fold f's fitted without fold f

    def features(self, pool: CandidatePool, decision: Decision) -> ConfidenceFeatures:
        return confidence_features(pool, decision, self.top_m, self.agree_km)

    def radii(
        self,
        features: ConfidenceFeatures,
        levels: Sequence[float],
        query_ids: Sequence[str] | None = None,
    ) -> dict[float, np.ndarray]:
        """level -> (n,) radii in km. With the ids of the calibration benchmark's own queries
        (query_ids), each from the model fitted without its fold; else from the whole model."""
        x = features.matrix()
        if query_ids is None:
            return {q: self.model.radius(x, q) for q in levels}
        fold = fold_of(query_ids, len(self.fold_models))
        out = {q: np.zeros(len(x)) for q in levels}
        for f, model in enumerate(self.fold_models):
            rows = fold == f
            for q in levels:
                out[q][rows] = model.radius(x[rows], q)
        return out

    @property
    def curve_levels(self) -> tuple[float, ...]:
        return tuple(float(q) for q in self.model.levels)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "benchmark": self.benchmark,
            "levels": list(self.levels),
            "top_m": self.top_m,
            "agree_km": self.agree_km,
            "model": self.model.as_dict(),
            "fold_models": [m.as_dict() for m in self.fold_models],
        }

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=1, sort_keys=True) + "\n")
        return path


def read_calibration(path: Path) -> Calibration:
    """The calibration file, or an error naming what writes it."""
    if not path.is_file():
        raise FileNotFoundError(
            f"no confidence calibration at {path}: materialize it with "
            "`geoloc materialize --group verification`"
        )
    record = json.loads(path.read_text())
    if record.get("format") != FORMAT:
        raise ValueError(
            f"{path} has format {record.get('format')!r}, this geoloc reads {FORMAT}: "
            "materialize the verification group again"
        )
    return Calibration(
        benchmark=str(record["benchmark"]),
        levels=tuple(float(q) for q in record["levels"]),
        top_m=int(record["top_m"]),
        agree_km=float(record["agree_km"]),
        model=RadiusModel.from_dict(record["model"]),
        fold_models=tuple(RadiusModel.from_dict(m) for m in record["fold_models"]),
    )


def calibrate(
    settings: ConfidenceSettings,
    query_ids: Sequence[str],
    features: ConfidenceFeatures,
    errors_km: np.ndarray,
) -> Calibration:
    """The calibration from one benchmark's decisions: their features and errors (km)."""
    x = features.matrix()
    errors_km = np.asarray(errors_km, np.float64)

    def fit(rows: np.ndarray) -> RadiusModel:
        return fit_radius_model(
            x[rows], errors_km[rows], FEATURE_NAMES, settings.groups, settings.levels
        )

    fold = fold_of(query_ids, settings.folds)
    return Calibration(
        benchmark=settings.benchmark,
        levels=tuple(settings.levels),
        top_m=settings.top_m,
        agree_km=settings.agree_km,
        model=fit(np.ones(len(x), bool)),
        fold_models=tuple(fit(fold != f) for f in range(settings.folds)),
    )
