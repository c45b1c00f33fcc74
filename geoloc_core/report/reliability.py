"""The confidence radii's reliability: per benchmark, each stated coverage (the level a radius
was fitted for) against the observed one (the share of decisions whose truth lies within
their radius). A calibrated confidence sits on the diagonal.

The data (metrics/plots/reliability_<benchmark>.csv) comes from the verification step's radii
at every curve level (artifacts/predictions/<benchmark>.radii.csv) and the metrics' errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from geoloc_core.paths import ProjectPaths, radius_level

BAND = 0.05  # the acceptance band drawn around the diagonal (stated +-5 points)


def reliability(paths: ProjectPaths, benchmark: str) -> pd.DataFrame | None:
    """stated, observed, median_radius_km per curve level; None without radii (predictions
    made without a calibration)."""
    source = paths.radii(benchmark)
    if not source.is_file():
        return None
    radii = pd.read_csv(source, dtype={"id": str})
    errors = pd.read_csv(paths.errors(benchmark), dtype={"id": str}).set_index("id")
    if radii.empty:
        return None
    error_km = errors.loc[radii["id"], "error_km"].to_numpy(np.float64)
    rows = []
    for column in radii.columns:
        level = radius_level(column)
        if level is None:
            continue
        radius = radii[column].to_numpy(np.float64)
        rows.append(
            {
                "stated": level,
                "observed": float((error_km <= radius).mean()),
                "median_radius_km": float(np.median(radius)),
            }
        )
    return pd.DataFrame(rows).sort_values("stated", ignore_index=True)


def write_reliability(path: Path, table: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False, float_format="%.4f", lineterminator="\n")
    return path


def plot_reliability(
    table: pd.DataFrame, title: str, stated_levels: Sequence[float], n: int, out: Path
) -> Path:
    """Observed against stated coverage, the diagonal and its +-5 point band; the levels the
    predictions state (radius_50_km, ...) marked and labelled with their numbers."""
    from geoloc_core.report.figures import plt, save_figure

    fig, ax = plt.subplots(figsize=(5.6, 5.2))
    line = np.array([0.0, 1.0])
    ax.fill_between(line * 100, (line - BAND) * 100, (line + BAND) * 100, color="0.9",
                    label=f"stated ±{BAND * 100:g} points")
    ax.plot(line * 100, line * 100, color="0.45", lw=1, ls="--", label="perfect calibration")
    ax.plot(table["stated"] * 100, table["observed"] * 100, marker="o", ms=4, color="#1f4e9c",
            lw=1.6, label=f"observed (n={n})")
    labelled: list[float] = []  # observed % of the labels placed so far
    for level in stated_levels:
        row = table[np.isclose(table["stated"], level)]
        if row.empty:
            continue
        observed = float(row["observed"].iloc[0]) * 100
        radius = float(row["median_radius_km"].iloc[0])
        ax.scatter([level * 100], [observed], s=80, color="#e07b00", zorder=4,
                   edgecolors="black", linewidths=0.6)
        right = level > 0.6  # the label on the side with room
        ax.annotate(f"{level * 100:g}% radius: {observed:.1f}% covered\n(median {radius:,.0f} km)",
                    (level * 100, observed),
                    xytext=(-10 if right else 10, _label_drop(observed, labelled)),
                    textcoords="offset points", ha="right" if right else "left", fontsize=8)
        labelled.append(observed)
    ax.set(xlim=(0, 100), ylim=(0, 100), xlabel="stated coverage of the radius, %",
           ylabel="observed: % of truths within the radius")
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=10)
    ax.grid(True, color="0.92")
    ax.legend(loc="best", fontsize=8)  # where the curve leaves room
    return save_figure(fig, out)


def _label_drop(observed: float, labelled: Sequence[float]) -> float:
    """Vertical offset (points) of a level's label: below its marker, unless an earlier label
    sits at nearly the same height (two levels with nearly the same coverage), then above it,
    or further below where above is the top of the plot."""
    if not any(abs(observed - other) < 15 for other in labelled):
        return -26
    return 12 if observed < 75 else -56
