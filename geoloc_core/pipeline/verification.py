"""G3's geo-verification: the decision per query of one benchmark (its predictions), with its
confidence radii from the calibration."""

from __future__ import annotations

from geoloc_core.confidence.calibration import read_calibration
from geoloc_core.pipeline.outcome import StepContext, StepOutcome
from geoloc_core.steps.verification import verify_benchmark


def verification(ctx: StepContext) -> StepOutcome:
    benchmark, paths = ctx.key, ctx.paths
    calibration = read_calibration(paths.confidence_calibration)
    summary = verify_benchmark(paths, benchmark, ctx.section("verification"), calibration)
    ctx.run.log_metrics(summary)
    ctx.run.log_artifact(paths.predictions(benchmark))
    return StepOutcome(summary, [paths.predictions(benchmark), paths.radii(benchmark)])
