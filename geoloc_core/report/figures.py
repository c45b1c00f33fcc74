"""Pictures of the report: error CDFs (log x, thresholds marked) and prediction maps.

matplotlib is imported here only, so the steps that never draw do not pay for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap

from geoloc_core.report.cdf import ecdf
from geoloc_core.report.coastlines import Coastlines
from geoloc_core.report.published import PublishedRow
from geoloc_core.report.runs import RunResult

X_MIN_KM = 0.1  # errors below (exact hits) are drawn at the left edge of the log axis
X_MAX_KM = 20_038.0  # half the equator: no error on Earth is larger
SCALE_NAMES = {1.0: "street", 25.0: "city", 200.0: "region", 750.0: "country", 2500.0: "continent"}
DPI = 110
_OURS_STYLE = {
    "decision": {"color": "#1f4e9c", "lw": 2.4},
    "retrieval_top1": {"color": "#e07b00", "lw": 1.5},
    "rerank": {"color": "#2a9d3a", "lw": 1.5, "ls": "-."},
}
_BASELINE_COLORS = ("#8e44ad", "#7f7f7f", "#c0392b", "#16a0b5", "#b8860b", "#555555")
_MARKERS = ("x", "+", "^", "v", "s", "D", "P", "*", "h", "o")


def _step_curve(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ECDF as a step curve in percent, spanning the whole axis."""
    x, fraction = ecdf(errors)
    x = np.clip(x, X_MIN_KM, X_MAX_KM)
    return np.r_[X_MIN_KM, x, X_MAX_KM], np.r_[0.0, fraction, fraction[-1]] * 100.0


def _cdf_axes(ax: plt.Axes, thresholds_km: Sequence[float], title: str, xlabel: str) -> None:
    """Log x over every possible error, thresholds dotted and named at the top."""
    for t in thresholds_km:
        ax.axvline(t, color="0.55", lw=0.8, ls=":", zorder=0)
        name = SCALE_NAMES.get(float(t))
        ax.text(
            t,
            1.01,
            f"{t:g} km" + (f"\n{name}" if name else ""),
            ha="center",
            va="bottom",
            fontsize=7.5,
            color="0.3",
            transform=ax.get_xaxis_transform(),
        )
    ax.set(
        xscale="log",
        xlim=(X_MIN_KM, X_MAX_KM),
        ylim=(0, 100.8),
        xlabel=xlabel,
        ylabel="% of images with error ≤ x",
    )
    ax.set_title(title, pad=26)
    ax.grid(True, which="major", axis="y", color="0.9")


def save_figure(fig: plt.Figure, out: Path) -> Path:
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return out


def plot_cdf(
    title: str,
    runs: Sequence[RunResult],
    thresholds_km: Sequence[float],
    out: Path,
    published: Sequence[PublishedRow] = (),
) -> Path:
    """One curve per run with per-image errors; markers at the thresholds for summary-only
    runs and for published results (which come without per-image errors)."""
    fig, ax = plt.subplots(figsize=(10, 5.2))
    thresholds = np.asarray(thresholds_km, np.float64)
    baselines = 0
    for run in runs:
        style = _OURS_STYLE.get(run.key)
        if style is None:
            color = _BASELINE_COLORS[baselines % len(_BASELINE_COLORS)]
            style = {"color": color, "lw": 1.2, "ls": "--"}
            baselines += 1
        label = f"{run.label} (n={run.summary.get('n', '?')})"
        if run.errors is not None:
            ax.step(*_step_curve(run.errors), where="post", label=label, **style)
        else:
            values = [run.accuracy(t) for t in thresholds]
            ax.plot(
                thresholds,
                values,
                marker="o",
                ls="none",
                color=style["color"],
                label=f"{label}, summary only",
            )
    for i, row in enumerate(published):
        ax.plot(
            thresholds,
            [row.accuracy(t) for t in thresholds],
            ls="none",
            marker=_MARKERS[i % len(_MARKERS)],
            ms=6,
            mfc="none",
            color=plt.cm.Dark2(i % 8),
            label=f"published: {row.method}",
        )
    xlabel = f"geodesic error, km (log scale; errors under {X_MIN_KM:g} km drawn at its edge)"
    _cdf_axes(ax, thresholds, title, xlabel)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    return save_figure(fig, out)


def plot_overview(
    decisions: Mapping[str, np.ndarray], thresholds_km: Sequence[float], out: Path
) -> Path:
    """The decision's CDF of every benchmark in one picture."""
    fig, ax = plt.subplots(figsize=(8, 4.6))
    for name, errors in decisions.items():
        ax.step(*_step_curve(errors), where="post", lw=1.8, label=f"{name} (n={len(errors)})")
    _cdf_axes(
        ax, thresholds_km, "Error of the decision per benchmark", "geodesic error, km (log scale)"
    )
    ax.legend(loc="upper left", fontsize=8)
    return save_figure(fig, out)


def _segments(predictions: pd.DataFrame) -> np.ndarray:
    """true -> predicted segments; one crossing the antimeridian is drawn the short way,
    as two pieces (one on each side of the map, clipped by the axes)."""
    start = predictions[["lon", "lat"]].to_numpy(np.float64)
    end = predictions[["pred_lon", "pred_lat"]].to_numpy(np.float64)
    dlon = end[:, 0] - start[:, 0]
    shift = np.where(dlon > 180, -360.0, np.where(dlon < -180, 360.0, 0.0))
    wrapped = end.copy()
    wrapped[:, 0] += shift
    segments = [np.stack([start, wrapped], axis=1)]
    crossing = shift != 0
    if crossing.any():
        mirrored_start = start[crossing].copy()
        mirrored_start[:, 0] -= shift[crossing]
        segments.append(np.stack([mirrored_start, end[crossing]], axis=1))
    return np.concatenate(segments)


def plot_map(
    predictions: pd.DataFrame, title: str, out: Path, coast: Coastlines, max_points: int = 400
) -> Path:
    """True (dots) and predicted (crosses) locations on real coastlines, joined by a line."""
    if len(predictions) > max_points:  # evenly spread, deterministic
        picked = np.linspace(0, len(predictions) - 1, max_points).round().astype(int)
        shown = predictions.iloc[np.unique(picked)]
    else:
        shown = predictions
    fig, ax = plt.subplots(figsize=(10, 5.4))
    sea_and_land = ListedColormap(["#e4eef7", "#f1ede3"])
    ax.imshow(
        coast.land,
        extent=coast.extent,
        origin="upper",
        interpolation="nearest",
        cmap=sea_and_land,
        zorder=0,
        rasterized=True,
    )
    ax.add_collection(LineCollection(coast.lines, colors="#7d8a96", linewidths=0.45, zorder=1))
    errors = LineCollection(
        _segments(shown), colors="#d62728", linewidths=0.5, alpha=0.45, zorder=2
    )
    ax.add_collection(errors)
    ax.scatter(shown["lon"], shown["lat"], s=9, c="#1f4e9c", zorder=3, label="true location")
    ax.scatter(
        shown["pred_lon"],
        shown["pred_lat"],
        s=14,
        c="#e07b00",
        marker="x",
        linewidths=0.9,
        zorder=4,
        label="prediction (decision)",
    )
    ax.set(
        xlim=(-180, 180),
        ylim=(-90, 90),
        xlabel="longitude",
        ylabel="latitude",
        xticks=range(-180, 181, 60),
        yticks=range(-90, 91, 30),
    )
    ax.set_aspect("equal")
    ax.set_title(f"{title} ({len(shown)} of {len(predictions)} images shown)")
    ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
    return save_figure(fig, out)
