"""G3's geo-verification: the decision per query of one benchmark (its predictions)."""

from __future__ import annotations

from geoloc_core.pipeline.outcome import StepContext, StepOutcome
from geoloc_core.steps.verification import verify_benchmark


def verification(ctx: StepContext) -> StepOutcome:
    benchmark, paths = ctx.key, ctx.paths
    summary = verify_benchmark(paths, benchmark, ctx.section("verification"))
    ctx.run.log_metrics(summary)
    ctx.run.log_artifact(paths.predictions(benchmark))
    return StepOutcome(summary, [paths.predictions(benchmark)])
