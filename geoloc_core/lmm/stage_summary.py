"""The LMM stage's summary of one benchmark: what was asked, answered, dropped and spent (the
summary JSON beside the answers, and the one line the step logs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geoloc_core.inference.lmm import LmmAnswers
from geoloc_core.lmm.answers import DropCounts
from geoloc_core.lmm.plans import Plan
from geoloc_core.lmm.settings import LmmSettings

_COUNTS = (
    "queries",
    "queries_without_candidates",
    "prompts_skipped_short",
    "prompts",
    "prompts_complete",
    "prompts_unanswered",
    "prompts_failed",
    "prompts_unbuildable",
    "samples_expected",
    "samples_missing",
    "requests_sent",
    "cache_hits",
    "answers_received",
    "retries",
    "shortfall_requests",
    "choices_shortfall",
    "tokens_in",
    "tokens_out",
    "answers_kept",
    "drops_total",
    "reference_images_unreadable",
)


def empty_summary(settings: LmmSettings, benchmark: str) -> dict[str, Any]:
    """Every key at zero: the summary of a run that asked nothing."""
    return {
        "benchmark": benchmark,
        "provider": settings.provider,
        "model": settings.model if settings.provider != "none" else "",
        "mode": settings.mode,
        "n": settings.n,
        "g3_rag_sizes": list(settings.g3_rag_sizes),
        "skipped": False,
        "skip_reason": "",
        **dict.fromkeys(_COUNTS, 0),
        "estimated_cost": 0.0,
        "errors": {},
        "budget_exhausted": False,
        "stopped_reason": "",
        "answers_by_source": {},
        "drops": DropCounts().as_dict(),
    }


def answered_summary(
    settings: LmmSettings, benchmark: str, plan: Plan, answers: LmmAnswers
) -> dict[str, Any]:
    """The summary of a run that asked the plan's prompts and got these answers."""
    summary = empty_summary(settings, benchmark)
    summary.update(plan.counts)
    stats = answers.stats
    summary.update(
        {
            "prompts": stats["prompts"],
            "prompts_complete": stats["prompts_complete"],
            "prompts_unanswered": stats["prompts_unanswered"],
            "prompts_failed": stats["prompts_failed"],
            "prompts_unbuildable": stats["prompts_unbuildable"],
            "samples_expected": stats["samples_expected"],
            "samples_missing": stats["samples_missing"],
            "requests_sent": stats["requests"],
            "cache_hits": stats["cache_hits"],
            "answers_received": stats["answers_new"],
            "retries": stats["retries"],
            "shortfall_requests": stats["shortfall_requests"],
            "choices_shortfall": stats["choices_shortfall"],
            "tokens_in": stats["tokens_in"],
            "tokens_out": stats["tokens_out"],
            "estimated_cost": round(answers.estimated_cost, 6),
            "errors": stats["errors"],
            "budget_exhausted": stats["budget_exhausted"],
            "stopped_reason": stats["stopped_reason"],
            "answers_kept": len(answers.rows),
            "answers_by_source": dict(sorted(answers.by_source.items())),
            "drops": answers.drops.as_dict(),
            "drops_total": answers.drops.total,
            "reference_images_unreadable": plan.unreadable_references.count,
        }
    )
    return summary


def summary_line(benchmark: str, summary: Mapping[str, Any]) -> str:
    drops = ", ".join(f"{k} {v}" for k, v in summary["drops"].items() if v) or "none"
    line = (
        f"lmm {benchmark}: {summary['answers_kept']} answers kept from {summary['prompts']} "
        f"prompts; {summary['requests_sent']} requests ({summary['retries']} retries), "
        f"{summary['cache_hits']} cached answers; tokens {summary['tokens_in']} in / "
        f"{summary['tokens_out']} out, est. cost {summary['estimated_cost']:.4f}; "
        f"dropped: {drops}"
    )
    if summary["budget_exhausted"]:
        line += (
            f"; BUDGET EXHAUSTED: {summary['prompts_unanswered']} prompts unanswered (raise "
            "lmm.max_requests / lmm.max_tokens_total and rerun: cached answers are reused)"
        )
    return line
