"""The report over every benchmark: tables, curves, maps and the plot data DVC renders."""

from __future__ import annotations

from geoloc_core.pipeline.outcome import Meta, StepContext, StepOutcome
from geoloc_core.report.labels import LABEL_SECTIONS
from geoloc_core.steps.report import build_report


def report(ctx: StepContext) -> StepOutcome:
    evaluation = ctx.settings["evaluation"]
    files = build_report(
        ctx.paths,
        ctx.settings["benchmarks"]["names"],
        evaluation["thresholds_km"],
        evaluation["distance"],
        {name: ctx.section(name) for name in LABEL_SECTIONS},
    )
    for path in files:
        ctx.run.log_artifact(path, "report")
    reports = ctx.paths.reports
    extra = {
        "report": Meta("path", str(reports / "report.html")),
        "error_curves": Meta("path", str(reports / "error_curves.png")),
    }
    return StepOutcome({"files": len(files)}, files, metadata=extra)
