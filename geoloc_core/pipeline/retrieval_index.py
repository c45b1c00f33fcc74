"""The FAISS index over every reference embedding shard."""

from __future__ import annotations

import json

from geoloc_core.pipeline.outcome import StepContext, StepOutcome
from geoloc_core.steps.indexing import build_index


def retrieval_index(ctx: StepContext) -> StepOutcome:
    paths = ctx.paths
    index = ctx.section("index")
    summary = build_index(paths, index, list(ctx.feature_shards), ctx.log)
    ctx.run.log_metrics(summary)
    ctx.run.log_artifact(paths.index_record)
    # The index file of IVF-PQ or HNSW need not be byte-stable; what it holds is fixed by its
    # settings and the shards it was built from.
    settings_file = paths.index_dir / "settings.json"
    settings_file.write_text(json.dumps(index, sort_keys=True))
    return StepOutcome(summary, [paths.index_record, settings_file, paths.index_meta])
