"""Accuracy within each threshold on one benchmark, for the decision and each stage."""

from __future__ import annotations

from geoloc_core.pipeline.outcome import StepContext, StepOutcome
from geoloc_core.steps.evaluate import evaluate_benchmark, flat_metrics


def metrics(ctx: StepContext) -> StepOutcome:
    benchmark, paths = ctx.key, ctx.paths
    values = evaluate_benchmark(paths, benchmark, ctx.section("evaluation"))
    flat = flat_metrics(values)
    ctx.run.log_metrics(flat)
    ctx.run.log_artifact(paths.metrics(benchmark))
    ctx.log(f"{benchmark}: {flat}")
    errors = paths.artifacts / "errors" / f"{benchmark}.csv"
    return StepOutcome(flat, [paths.metrics(benchmark), errors])
