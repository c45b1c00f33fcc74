"""Step: the evaluation report — one table per benchmark, error CDFs, prediction maps, plot data.

Writes reports/report.md and reports/report.html (self-contained: pictures embedded), the
pictures themselves (reports/cdf_<benchmark>.png, reports/map_<benchmark>.png,
reports/reliability_<benchmark>.png when the predictions carry confidence radii,
reports/error_curves.png) and the plot data DVC renders and diffs
(metrics/plots/cdf_<benchmark>.csv, metrics/plots/accuracy_<benchmark>.csv,
metrics/plots/reliability_<benchmark>.csv). Everything is read
from files earlier steps wrote; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from geoloc_core.paths import ProjectPaths, radius_level
from geoloc_core.report.cdf import write_accuracy, write_cdf
from geoloc_core.report.html import html_report
from geoloc_core.report.labels import RunSetting, run_setting
from geoloc_core.report.markdown import markdown_report
from geoloc_core.report.published import (
    MARK,
    PUBLISHED_BENCHMARKS,
    PublishedRow,
    published_for,
    published_rows,
)
from geoloc_core.report.reliability import plot_reliability, reliability, write_reliability
from geoloc_core.report.runs import RunResult, benchmark_runs
from geoloc_core.report.tables import (
    Figure,
    ReportDoc,
    Section,
    benchmark_table,
    published_table,
)

TITLE = "geoloc report"


def _summary(
    settings: Mapping[str, RunSetting], distance: str, benchmarks: Sequence[str]
) -> tuple[str, ...]:
    return (
        f"This run: variant {_shared(settings, 'variant')} · re-rank "
        f"{_shared(settings, 'rerank')} · verification {_shared(settings, 'verification')} · "
        f"LMM {_shared(settings, 'lmm')}",
        f"Distance: {distance}; accuracy = % of images whose error is strictly below the "
        "threshold; curves show the share at or below each error.",
        f"Benchmarks: {', '.join(benchmarks)}.",
        f"Rows marked '{MARK}' are copied from papers (source named on each row) and appear "
        f"only beside the benchmark they were measured on ({', '.join(PUBLISHED_BENCHMARKS)}).",
    )


def _shared(settings: Mapping[str, RunSetting], field: str) -> str:
    """One setting over every benchmark: its value when they agree, else each value with the
    benchmarks it produced ('dbscan eps 20 km, min 2 (validation); ...')."""
    by_value: dict[str, list[str]] = {}
    for benchmark, setting in settings.items():
        by_value.setdefault(getattr(setting, field), []).append(benchmark)
    if len(by_value) <= 1:
        return next(iter(by_value), "?")
    return "; ".join(f"{value} ({', '.join(names)})" for value, names in by_value.items())


def _plot_data(
    paths: ProjectPaths, benchmark: str, runs: Sequence[RunResult], thresholds: Sequence[float]
) -> list[Path]:
    decision = next(r for r in runs if r.key == "decision")
    columns = {r.key: {float(t): r.accuracy(t) for t in thresholds} for r in runs}
    return [
        write_cdf(paths.cdf_table(benchmark), decision.errors),
        write_accuracy(paths.accuracy_table(benchmark), thresholds, columns),
    ]


def _benchmark_section(
    paths: ProjectPaths,
    benchmark: str,
    runs: Sequence[RunResult],
    published: Sequence[PublishedRow],
    thresholds: Sequence[float],
) -> tuple[Section, list[Path]]:
    from geoloc_core.report.coastlines import coastlines
    from geoloc_core.report.figures import plot_cdf, plot_map

    n = next(r for r in runs if r.key == "decision").summary.get("n", "?")
    cdf_png = plot_cdf(
        f"{benchmark}: error CDF of each compared run",
        runs,
        thresholds,
        paths.reports / f"cdf_{benchmark}.png",
        published,
    )
    predictions = pd.read_csv(paths.predictions(benchmark))
    map_png = plot_map(
        predictions,
        f"{benchmark}: true location vs decision",
        paths.reports / f"map_{benchmark}.png",
        coastlines(),
    )
    figures = [
        Figure(f"{benchmark}: error CDF (log x, thresholds dotted)", cdf_png),
        Figure(f"{benchmark}: true locations and decisions on coastlines", map_png),
    ]
    written = [cdf_png, map_png]
    curve = reliability(paths, benchmark)
    if curve is not None:
        stated = [q for q in map(radius_level, predictions.columns) if q is not None]
        picture = plot_reliability(
            curve,
            f"{benchmark}: confidence radii, stated vs observed coverage",
            stated,
            int(n) if isinstance(n, int) else len(predictions),
            paths.reports / f"reliability_{benchmark}.png",
        )
        figures.append(Figure(f"{benchmark}: reliability of the confidence radii", picture))
        written += [picture, write_reliability(paths.reliability_table(benchmark), curve)]
    section = Section(
        heading=f"{benchmark} ({n} images)",
        tables=(benchmark_table(benchmark, runs, thresholds, published),),
        figures=tuple(figures),
    )
    return section, written


def _empty_section(
    benchmark: str,
    runs: Sequence[RunResult],
    thresholds: Sequence[float],
    summary: Mapping[str, Any],
) -> Section:
    """A benchmark without images (its dataset is absent): the reason and the published rows,
    no curve, map or plot data (an empty CDF has nothing to draw)."""
    reason = summary.get("skipped") or "the benchmark has no images"
    return Section(
        heading=f"{benchmark} (0 images)",
        text=f"Not evaluated: {reason}",
        tables=(benchmark_table(benchmark, runs, thresholds, published_for(benchmark)),),
    )


def build_report(
    paths: ProjectPaths,
    benchmarks: Sequence[str],
    thresholds_km: Sequence[float],
    distance: str = "geodesic",
    settings: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
) -> list[Path]:
    """Write the report of every benchmark; `settings` are, per benchmark, the params sections
    its metrics were produced with that label its rows (model, embeddings, rerank,
    verification, lmm). Returns the files written."""
    from geoloc_core.report.figures import plot_overview

    paths.reports.mkdir(parents=True, exist_ok=True)
    thresholds = [float(t) for t in thresholds_km]
    by_benchmark = {b: run_setting((settings or {}).get(b, {})) for b in benchmarks}
    sections: list[Section] = []
    written: list[Path] = []
    decisions = {}
    for benchmark in benchmarks:
        runs = benchmark_runs(paths, benchmark, by_benchmark[benchmark], distance)
        decision = next(r for r in runs if r.key == "decision")
        if not decision.summary.get("n"):
            sections.append(_empty_section(benchmark, runs, thresholds, decision.summary))
            continue
        decisions[benchmark] = decision.errors
        section, pictures = _benchmark_section(
            paths, benchmark, runs, published_for(benchmark), thresholds
        )
        sections.append(section)
        written += pictures + _plot_data(paths, benchmark, runs, thresholds)
    elsewhere = [r for r in published_rows() if r.benchmark not in set(benchmarks)]
    if elsewhere:
        sections.append(
            Section(
                heading="published results (other data)",
                text=(
                    "Not re-run here and not measured on the benchmarks above: listed so the "
                    "scale of the real benchmarks is at hand, never to compare with the demo."
                ),
                tables=(published_table(elsewhere, thresholds),),
            )
        )
    overview = plot_overview(decisions, thresholds, paths.reports / "error_curves.png")
    overview_figure = Figure("error of the decision, every benchmark", overview)
    sections.insert(0, Section("all benchmarks", figures=(overview_figure,)))
    doc = ReportDoc(TITLE, _summary(by_benchmark, distance, benchmarks), tuple(sections))
    markdown = paths.reports / "report.md"
    markdown.write_text(markdown_report(doc, paths.reports), encoding="utf-8")
    page = paths.reports / "report.html"
    page.write_text(html_report(doc), encoding="utf-8")
    return [*written, overview, markdown, page]
