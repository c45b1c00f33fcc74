"""The segmentation step: one shard of label maps, re-read from disk as its own check."""

from __future__ import annotations

from geoloc_core.pipeline.outcome import CheckOutcome, Meta, StepContext, StepOutcome
from geoloc_core.segmentation.step import ShardReport, build_segmentation_shard

SHARD_CHECK = "shard_is_sound"
MAX_LISTED_FAILURES = 50


def segmentation_cache(ctx: StepContext) -> StepOutcome:
    names = list(ctx.settings["benchmarks"]["names"])
    ctx.run.set_tags({"benchmark": ",".join(names)})
    report = build_segmentation_shard(
        ctx.paths, ctx.section("segmentation"), names, ctx.key, ctx.log, ctx.section("loader")
    )
    summary = report.summary()
    ctx.run.log_metrics(summary)
    if report.outcome.failures:
        ctx.run.log_artifact(report.failures_csv, "segmentation")
    ctx.log(f"segmentation shard {ctx.key}: {summary}")
    verdict = CheckOutcome(
        passed=not report.problems,
        metadata={"problems": "\n".join(report.problems) or "none"},
    )
    return StepOutcome(
        summary,
        data_version=report.outcome.digest,
        metadata=_details(report),
        checks={SHARD_CHECK: verdict},
    )


def _details(report: ShardReport) -> dict[str, object]:
    """Where the shard is, why it was (re)made, and which images failed (by id)."""
    outcome = report.outcome
    listed = outcome.failures[:MAX_LISTED_FAILURES]
    lines = ["| id | reason |", "|---|---|", *(f"| {f.id} | {f.reason} |" for f in listed)]
    return {
        "path": Meta("path", str(outcome.path)),
        "failures_csv": Meta("path", str(report.failures_csv)),
        "reason": outcome.reason,
        "content_sha256": outcome.digest,
        "failed_images": Meta("md", "\n".join(lines) if listed else "none"),
    }
