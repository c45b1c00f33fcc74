"""One shard of reference images as retrieval vectors."""

from __future__ import annotations

from geoloc_core.pipeline.outcome import StepContext, StepOutcome
from geoloc_core.steps.indexing import embed_reference_shard


def reference_embeddings(ctx: StepContext) -> StepOutcome:
    n_shards = len(ctx.feature_shards)
    summary = embed_reference_shard(ctx.paths, ctx.section("embeddings"), ctx.key, n_shards)
    ctx.run.log_metrics(summary)
    ctx.log(f"reference embeddings shard {ctx.key}: {summary}")
    return StepOutcome(summary, list(ctx.paths.embedding_shard(ctx.key)))
