"""The confidence columns a benchmark's predictions gain, and its radii at every curve level."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from geoloc_core.confidence.calibration import Calibration
from geoloc_core.inference.decision import Decision
from geoloc_core.inference.pool import CandidatePool
from geoloc_core.paths import CONFIDENCE_FEATURE_COLUMNS, RADII_ID_COLUMNS, radius_column


@dataclass(frozen=True)
class ConfidenceTable:
    predictions: pd.DataFrame  # the features, then a radius per stated level
    curve: pd.DataFrame  # id, then a radius per level of the reliability curve


def confidence_table(
    calibration: Calibration,
    benchmark: str,
    ids: Sequence[str],
    pool: CandidatePool,
    decision: Decision,
) -> ConfidenceTable:
    """Each decision's features and radii; the calibration benchmark's own queries get theirs
    from the models fitted without them (cross-fitting)."""
    features = calibration.features(pool, decision)
    own = list(ids) if benchmark == calibration.benchmark else None
    levels = calibration.curve_levels
    radii = calibration.radii(features, levels, own)
    predictions = pd.DataFrame(
        {
            "spread_km": features.spread_km,
            "agreement": features.agreement,
            "margin": features.margin,
            **{radius_column(q): radii[_matching(levels, q)] for q in calibration.levels},
        }
    )
    curve = pd.DataFrame({"id": list(ids), **{radius_column(q): radii[q] for q in levels}})
    return ConfidenceTable(predictions, curve)


def empty_confidence(calibration: Calibration) -> ConfidenceTable:
    """The same columns without rows (a benchmark with no queries)."""
    stated = [radius_column(q) for q in calibration.levels]
    curve = [radius_column(q) for q in calibration.curve_levels]
    return ConfidenceTable(
        pd.DataFrame(columns=[*CONFIDENCE_FEATURE_COLUMNS, *stated]),
        pd.DataFrame(columns=[*RADII_ID_COLUMNS, *curve]),
    )


def _matching(levels: Sequence[float], level: float) -> float:
    return next(q for q in levels if np.isclose(q, level))
