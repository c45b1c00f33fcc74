"""DualGeo's geographic re-rank of one benchmark's candidates."""

from __future__ import annotations

from geoloc_core.pipeline.outcome import StepContext, StepOutcome
from geoloc_core.steps.rerank import rerank_candidates


def rerank(ctx: StepContext) -> StepOutcome:
    benchmark = ctx.key
    summary = rerank_candidates(ctx.paths, benchmark, ctx.section("rerank"))
    ctx.run.log_metrics(summary)
    ctx.log(f"rerank[{benchmark}]: {summary}")
    return StepOutcome(summary, [ctx.paths.reranked(benchmark)])
