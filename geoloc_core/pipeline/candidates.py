"""Each benchmark query's similar and dissimilar reference images from the index."""

from __future__ import annotations

from geoloc_core.pipeline.outcome import StepContext, StepOutcome
from geoloc_core.steps.candidate_files import candidates_file, query_embeddings_files
from geoloc_core.steps.candidates import build_candidates


def candidates(ctx: StepContext) -> StepOutcome:
    benchmark, paths = ctx.key, ctx.paths
    summary = build_candidates(paths, benchmark, ctx.section("retrieval"), ctx.section("index"))
    ctx.run.log_metrics(summary)
    ctx.log(f"candidates[{benchmark}]: {summary}")
    files = [candidates_file(paths, benchmark), *query_embeddings_files(paths, benchmark)]
    return StepOutcome(summary, files)
