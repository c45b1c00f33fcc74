"""What the report says, independent of its format: sections of tables and pictures.

Markdown and HTML render the same `ReportDoc`, so the two outputs cannot tell different
stories. Our numbers are printed with two decimals as the metrics files hold them; published
numbers exactly as their source printed them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from geoloc_core.report.labels import NOT_APPLIED, SETTING_COLUMNS
from geoloc_core.report.published import MARK, PublishedRow
from geoloc_core.report.runs import RunResult


@dataclass(frozen=True)
class TableRow:
    cells: tuple[str, ...]
    kind: str  # "ours", "decision", "baseline" or "published"


@dataclass(frozen=True)
class Table:
    title: str
    header: tuple[str, ...]
    rows: tuple[TableRow, ...]
    note: str = ""


@dataclass(frozen=True)
class Figure:
    caption: str
    path: Path


@dataclass(frozen=True)
class Section:
    heading: str
    text: str = ""
    tables: tuple[Table, ...] = ()
    figures: tuple[Figure, ...] = ()


@dataclass(frozen=True)
class ReportDoc:
    title: str
    summary: tuple[str, ...] = ()
    sections: tuple[Section, ...] = field(default_factory=tuple)


def threshold_header(thresholds_km: Sequence[float]) -> tuple[str, ...]:
    return tuple(f"< {t:g} km" for t in thresholds_km)


def _percent(value: float | None) -> str:
    return NOT_APPLIED if value is None else f"{value:.2f}"


def _run_row(run: RunResult, thresholds_km: Sequence[float]) -> TableRow:
    median = run.summary.get("median_km")
    kind = "decision" if run.key == "decision" else run.kind
    return TableRow(
        cells=(
            run.label,
            "baseline" if run.kind == "baseline" else "this run",
            *(run.setting.get(c, NOT_APPLIED) for c in SETTING_COLUMNS),
            str(run.summary.get("n", NOT_APPLIED)),
            *(_percent(run.accuracy(t)) for t in thresholds_km),
            NOT_APPLIED if median is None else f"{float(median):.1f}",
            run.source,
        ),
        kind=kind,
    )


def _published_row(row: PublishedRow, thresholds_km: Sequence[float]) -> TableRow:
    return TableRow(
        cells=(
            row.method,
            MARK,
            *(NOT_APPLIED for _ in SETTING_COLUMNS),
            NOT_APPLIED,
            *(row.printed.get(float(t), NOT_APPLIED) for t in thresholds_km),
            NOT_APPLIED,
            f"{row.source}; read from: {row.via}",
        ),
        kind="published",
    )


def benchmark_table(
    benchmark: str,
    runs: Sequence[RunResult],
    thresholds_km: Sequence[float],
    published: Sequence[PublishedRow] = (),
) -> Table:
    """Our stages, the baselines, then (on IM2GPS3K / YFCC4K only) the published rows."""
    header = (
        "row",
        "kind",
        *SETTING_COLUMNS,
        "n",
        *threshold_header(thresholds_km),
        "median km",
        "source",
    )
    rows = [_run_row(r, thresholds_km) for r in runs]
    rows += [_published_row(p, thresholds_km) for p in published]
    note = "Accuracy in % of images with geodesic error strictly below each threshold."
    if published:
        note += f" Rows marked '{MARK}' are copied from the papers named in their source."
    return Table(title=f"{benchmark}", header=header, rows=tuple(rows), note=note)


def published_table(rows: Sequence[PublishedRow], thresholds_km: Sequence[float]) -> Table:
    """Published results on the real benchmarks, for a report that has none of them."""
    header = ("method", "benchmark", "kind", *threshold_header(thresholds_km), "source")
    body = tuple(
        TableRow(
            cells=(
                r.method,
                r.benchmark,
                MARK,
                *(r.printed.get(float(t), NOT_APPLIED) for t in thresholds_km),
                f"{r.source}; read from: {r.via}",
            ),
            kind="published",
        )
        for r in rows
    )
    return Table(
        title="published results (other data)",
        header=header,
        rows=body,
        note=(
            "Measured by their authors on IM2GPS3K / YFCC4K, not on the benchmarks of this "
            "report: they are not comparable with the rows above."
        ),
    )
