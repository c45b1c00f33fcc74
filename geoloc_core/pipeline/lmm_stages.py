"""The LMM stages of one benchmark: G3's geo-diversification (answers that join the
verification pool) and DualGeo's reasoning over the re-ranked candidates (the decision). Each
runs only in its own lmm.mode, and neither when lmm.provider is none (the demo default)."""

from __future__ import annotations

from typing import Any

from geoloc_core.pipeline.outcome import Meta, StepContext, StepOutcome
from geoloc_core.steps.lmm import run_lmm_stage


def lmm_diversification(ctx: StepContext) -> StepOutcome:
    """G3's geo-diversification: answers that join the verification pool."""
    return _lmm_stage(ctx, "g3")


def lmm_reasoning(ctx: StepContext) -> StepOutcome:
    """DualGeo's reasoning over the re-ranked candidates: its answer is the decision."""
    return _lmm_stage(ctx, "dualgeo")


def _lmm_stage(ctx: StepContext, mode: str) -> StepOutcome:
    benchmark, paths = ctx.key, ctx.paths
    section = ctx.section("lmm")
    ctx.run.set_tags({"lmm": f"{section['provider']}:{section['model']}"})
    summary = run_lmm_stage(paths, benchmark, section, log=ctx.log, for_mode=mode)
    counts = flat_counts(summary)
    ctx.run.log_metrics(counts)
    ctx.run.log_artifact(paths.lmm_summary(benchmark, mode))
    extra = {
        "drops": Meta("json", summary["drops"]),
        "errors": Meta("json", summary.get("errors", {})),
    }
    labels = {k: str(summary.get(k, "")) for k in ("provider", "model", "mode", "skip_reason")}
    return StepOutcome(counts | labels, [paths.lmm_answers(benchmark, mode)], metadata=extra)


def flat_counts(summary: dict[str, Any]) -> dict[str, float]:
    """Numbers of the summary (drops by reason as drop_<reason>) for MLflow and the UI."""
    counts = {
        k: v for k, v in summary.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    counts.update({f"drop_{k}": v for k, v in summary.get("drops", {}).items()})
    counts.update({f"error_{k.replace(' ', '_')}": v for k, v in summary.get("errors", {}).items()})
    counts["budget_exhausted"] = int(bool(summary.get("budget_exhausted")))
    counts["skipped"] = int(bool(summary.get("skipped")))
    return counts
