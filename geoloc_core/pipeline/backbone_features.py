"""The frozen image tower's outputs for one shard of image ids, cached once."""

from __future__ import annotations

from geoloc_core.pipeline.outcome import StepContext, StepOutcome
from geoloc_core.steps.backbone import build_backbone_features


def backbone_features(ctx: StepContext) -> StepOutcome:
    names = list(ctx.settings["benchmarks"]["names"])
    summary = build_backbone_features(
        ctx.paths, ctx.section("features"), names, ctx.key, ctx.log, ctx.section("loader")
    )
    ctx.run.log_metrics(summary)
    ctx.log(f"backbone features shard {ctx.key}: {summary}")
    return StepOutcome(summary, data_version=summary["digest"])
