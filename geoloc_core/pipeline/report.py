"""The report over every benchmark: tables, curves, maps and the plot data DVC renders."""

from __future__ import annotations

from geoloc_core.pipeline.outcome import Meta, StepContext, StepOutcome
from geoloc_core.report.labels import LABEL_SECTIONS
from geoloc_core.steps.report import build_report


def report(ctx: StepContext) -> StepOutcome:
    evaluation = ctx.settings["evaluation"]
    benchmarks = ctx.settings["benchmarks"]["names"]
    # each benchmark's rows name what its metrics were produced with (a launchpad override
    # upstream included), not params.yaml
    labels = {}
    for benchmark in benchmarks:
        produced_with = ctx.upstream_settings("metrics", benchmark)
        labels[benchmark] = {n: produced_with[n] for n in LABEL_SECTIONS if n in produced_with}
    files = build_report(
        ctx.paths, benchmarks, evaluation["thresholds_km"], evaluation["distance"], labels
    )
    for path in files:
        ctx.run.log_artifact(path, "report")
    reports = ctx.paths.reports
    extra = {
        "report": Meta("path", str(reports / "report.html")),
        "error_curves": Meta("path", str(reports / "error_curves.png")),
    }
    return StepOutcome({"files": len(files)}, files, metadata=extra)
