"""The simple baselines every trained model must beat, on one benchmark."""

from __future__ import annotations

from geoloc_core.pipeline.outcome import StepContext, StepOutcome
from geoloc_core.steps.baselines import compute_baselines


def baselines(ctx: StepContext) -> StepOutcome:
    benchmark = ctx.key
    summary = compute_baselines(
        ctx.paths, benchmark, ctx.section("baselines"), ctx.section("evaluation")
    )
    ctx.run.log_metrics(summary)
    ctx.log(f"baselines[{benchmark}]: {summary}")
    return StepOutcome(summary, [ctx.paths.baseline_metrics(benchmark)])
