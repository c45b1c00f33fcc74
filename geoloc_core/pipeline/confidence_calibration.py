"""The confidence calibration: radii with a stated coverage, fitted on validation's decisions."""

from __future__ import annotations

from geoloc_core.pipeline.outcome import StepContext, StepOutcome
from geoloc_core.steps.confidence import calibrate_benchmark


def confidence_calibration(ctx: StepContext) -> StepOutcome:
    paths = ctx.paths
    _, summary = calibrate_benchmark(
        paths, ctx.section("confidence"), ctx.section("verification"), ctx.section("evaluation")
    )
    ctx.run.log_metrics({k: v for k, v in summary.items() if not isinstance(v, str)})
    ctx.run.log_artifact(paths.confidence_calibration)
    ctx.log(f"confidence calibration: {summary}")
    return StepOutcome(summary, [paths.confidence_calibration])
