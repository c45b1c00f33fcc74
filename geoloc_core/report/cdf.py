"""Plot data DVC can render and diff: the error CDF and the accuracy at each threshold.

The CDF is exact, one point per distinct error: fraction = share of images whose error is at
most error_km (the accuracy columns use the benchmarks' strict "<", so at a threshold the two
differ only by images exactly on it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd


def ecdf(errors_km: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct errors ascending, and the fraction of images at or below each."""
    values = np.sort(np.asarray(errors_km, np.float64))
    if values.size == 0:
        raise ValueError("no errors: an empty benchmark has no CDF")
    distinct = np.unique(values)
    return distinct, np.searchsorted(values, distinct, side="right") / values.size


def write_cdf(path: Path, errors_km: np.ndarray) -> Path:
    x, fraction = ecdf(errors_km)
    path.parent.mkdir(parents=True, exist_ok=True)
    # full precision: a rounded error_km would move points across their own step
    pd.DataFrame({"error_km": x, "fraction": fraction}).to_csv(
        path, index=False, lineterminator="\n"
    )
    return path


def write_accuracy(
    path: Path,
    thresholds_km: Sequence[float],
    columns: Mapping[str, Mapping[float, float | None]],
) -> Path:
    """One row per threshold, one column per run (percent, as in the metrics files)."""
    table = pd.DataFrame({"threshold_km": [f"{float(t):g}" for t in thresholds_km]})
    for name, values in columns.items():
        table[name] = [values.get(float(t)) for t in thresholds_km]
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False, float_format="%.4f", lineterminator="\n")
    return path
