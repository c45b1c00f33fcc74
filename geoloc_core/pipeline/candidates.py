"""Each benchmark query's similar and dissimilar reference images from the index."""

from __future__ import annotations

from geoloc_core.pipeline.outcome import StepContext, StepOutcome
from geoloc_core.steps.candidates import build_candidates


def candidates(ctx: StepContext) -> StepOutcome:
    benchmark, paths = ctx.key, ctx.paths
    summary = build_candidates(paths, benchmark, ctx.section("retrieval"), ctx.section("index"))
    ctx.run.log_metrics(summary)
    ctx.log(f"candidates[{benchmark}]: {summary}")
    files = [paths.candidates(benchmark), *paths.query_embeddings(benchmark)]
    return StepOutcome(summary, files)
