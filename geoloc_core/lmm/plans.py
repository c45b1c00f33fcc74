"""What the LMM stage asks about one benchmark: its queries' prompt jobs, built from the
candidates table (G3) or the re-ranked table (DualGeo), and the counts of what was left out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from geoloc_core.lmm.jobs import Point, ShownCandidate, Tally, dualgeo_jobs, g3_jobs
from geoloc_core.lmm.runner import PromptJob
from geoloc_core.lmm.settings import LmmSettings


@dataclass
class Plan:
    jobs: list[PromptJob] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    short: dict[int, int] = field(default_factory=dict)  # rag size -> queries skipped
    unreadable_references: Tally = field(default_factory=Tally)


def plan_g3(
    settings: LmmSettings, images: Mapping[str, Path], candidates: pd.DataFrame | None
) -> Plan:
    """G3's prompts per query (images: query id -> photo, in manifest order) from its
    candidates (None when no rag size needs them)."""
    groups: dict[str, pd.DataFrame] = {}
    if candidates is not None:
        groups = {str(k): g for k, g in candidates.groupby("query_id", sort=False)}
    similar: list[list[Point]] = []
    dissimilar: list[list[Point]] = []
    without = 0
    for query_id in images:
        group = groups.get(query_id)
        if candidates is not None and group is None:
            without += 1
        similar.append(_points(group[group["kind"] == "similar"]) if group is not None else [])
        far = _points(group[group["kind"] == "dissimilar"]) if group is not None else []
        dissimilar.append(far)
    jobs, short = g3_jobs(settings, list(images), list(images.values()), similar, dissimilar)
    plan = Plan(jobs=jobs, short=dict(sorted(short.items())))
    plan.counts = {
        "queries": len(images),
        "queries_without_candidates": without,
        "prompts_skipped_short": sum(short.values()),
    }
    return plan


def plan_dualgeo(
    settings: LmmSettings,
    images: Mapping[str, Path],
    reranked: pd.DataFrame,
    reference_images: Mapping[str, Path],
) -> Plan:
    """DualGeo's prompt per query (images: query id -> photo, in manifest order) with its top
    lmm.dualgeo_top_m re-ranked candidates and their reference photos."""
    if "place" not in reranked.columns:
        reranked["place"] = ""
    groups = {str(k): g for k, g in reranked.groupby("query_id", sort=False)}
    shown: list[list[ShownCandidate] | None] = []
    for query_id in images:
        group = groups.get(query_id)
        if group is None or group.empty:
            shown.append(None)
            continue
        top = group.sort_values("rank", kind="stable").head(settings.dualgeo_top_m)
        shown.append(
            [
                (float(r.lat), float(r.lon), str(r.place), reference_images.get(str(r.ref_id)))
                for r in top.itertuples()
            ]
        )
    plan = Plan()
    plan.jobs = dualgeo_jobs(
        settings, list(images), list(images.values()), shown, plan.unreadable_references
    )
    without = sum(s is None for s in shown)
    plan.counts = {"queries": len(images), "queries_without_candidates": without}
    return plan


def _points(table: pd.DataFrame) -> list[Point]:
    ordered = table.sort_values("rank", kind="stable")
    return [(float(a), float(b)) for a, b in zip(ordered["lat"], ordered["lon"], strict=True)]
