"""Step: candidates (G3) or re-ranked candidates (DualGeo) -> artifacts/lmm/<benchmark>.csv.

g3 mode (geo-diversification): per query, one prompt per size r in lmm.g3_rag_sizes, from
the candidates file in raw retrieval order: r = 0 is the zero-shot prompt, r > 0 lists the
top r similar and top r dissimilar neighbours' coordinates. A size needs r of each: a query
with fewer is skipped for that size and counted (raise retrieval.top_k to max(g3_rag_sizes)).
dualgeo mode: per query, one prompt with the top lmm.dualgeo_top_m re-ranked candidates, each
with its reference photo, coordinates and place name.

Every prompt gets lmm.n answers. Only answers that parse are written, one row each
(query_id, source, sample, lat, lon); the rest are dropped and counted by reason in the
summary. Answers are cached as they arrive (see lmm/runner.py), so a rerun after a kill only
asks for what is missing. provider none writes an empty answers file: G3's "without
geo-diversification" setting; so does a benchmark with no queries (its data set absent).

This step reads and writes the files; the prompts are lmm/plans.py's and lmm/jobs.py's, the
asking and parsing the inference chain's (inference/lmm.py), which `geoloc predict` shares.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from geoloc_core.data.manifest import read_manifest
from geoloc_core.inference.lmm import ask_lmm
from geoloc_core.lmm.backend import lmm_backend
from geoloc_core.lmm.cache import JsonRecordCache, atomic_write_text
from geoloc_core.lmm.errors import LmmStageError
from geoloc_core.lmm.plans import Plan, plan_dualgeo, plan_g3
from geoloc_core.lmm.settings import LmmSettings
from geoloc_core.lmm.stage_summary import answered_summary, empty_summary, summary_line
from geoloc_core.paths import ANSWER_COLUMNS, ProjectPaths

_TEXT = {"query_id": str, "ref_id": str, "kind": str, "place": str}


def run_lmm_stage(
    paths: ProjectPaths,
    benchmark: str,
    lmm_section: Mapping[str, Any],
    progress: bool = True,
    log: Callable[[str], None] = print,
    for_mode: str | None = None,
) -> dict[str, Any]:
    """Ask the LMM, write the valid answers and a summary, return the summary.

    for_mode names the asset's mode (its output folder; default lmm.mode); when lmm.mode is
    the other one, or the provider is none, the step writes an empty answers file and a
    summary saying why.
    """
    settings = LmmSettings.from_section(lmm_section)
    for_mode = for_mode or settings.mode
    answers_file = paths.lmm_answers(benchmark, for_mode)
    reason = _skip_reason(paths, benchmark, settings, for_mode)
    if reason:
        _write_answers(answers_file, [])
        summary = empty_summary(settings, benchmark)
        summary["skipped"] = True
        summary["skip_reason"] = reason
        _write_summary(paths, benchmark, summary, for_mode)
        log(f"lmm {benchmark}: skipped ({reason})")
        return summary

    backend = lmm_backend(settings)
    manifest = read_manifest(paths.benchmark_manifest(benchmark))
    plan = _plan(paths, benchmark, settings, manifest)
    for size, count in plan.short.items():
        log(
            f"lmm {benchmark}: {count} queries have fewer than {size} similar or dissimilar "
            f"candidates: their rag-{size} prompt is skipped (retrieval.top_k >= {size} needed)"
        )
    log(
        f"lmm {benchmark}: {settings.mode} via {settings.provider} model {settings.model}: "
        f"{len(plan.jobs)} prompts x n={settings.n}"
    )
    cache = JsonRecordCache(settings.cache_path(paths.root))
    answers = ask_lmm(settings, backend, cache, plan.jobs, progress, f"lmm {benchmark}")
    _write_answers(answers_file, [(q, source, s, a, b) for _, s, q, source, a, b in answers.rows])
    summary = answered_summary(settings, benchmark, plan, answers)
    _write_summary(paths, benchmark, summary, for_mode)
    log(summary_line(benchmark, summary))
    if summary["stopped_reason"]:
        raise LmmStageError(
            f"the LMM server refused the requests ({summary['stopped_reason']}): check "
            f"lmm.model, lmm.base_url and the key in ${settings.api_key_env}; the "
            f"{summary['answers_kept']} answers so far are written and cached"
        )
    return summary


def _skip_reason(paths: ProjectPaths, benchmark: str, settings: LmmSettings, for_mode: str) -> str:
    """Why this step asks nothing ("" when it asks): provider none, the other mode, or an
    empty benchmark (its data set absent), which then needs no server, key or candidates."""
    if settings.provider == "none":
        return "lmm.provider is none (G3 without geo-diversification)"
    if settings.mode != for_mode:
        return f"lmm.mode is {settings.mode}; this step serves mode {for_mode}"
    if read_manifest(paths.benchmark_manifest(benchmark)).empty:
        return f"benchmark {benchmark} has no queries"
    return ""


def _plan(
    paths: ProjectPaths, benchmark: str, settings: LmmSettings, manifest: pd.DataFrame
) -> Plan:
    images = _image_paths(paths, manifest)
    if settings.mode == "g3":
        candidates = None
        if any(size > 0 for size in settings.g3_rag_sizes):
            candidates = _read_table(
                paths.candidates(benchmark),
                ("query_id", "kind", "rank", "lat", "lon"),
                "candidates",
            )
        return plan_g3(settings, images, candidates)
    reranked = _read_table(
        paths.reranked(benchmark), ("query_id", "rank", "ref_id", "lat", "lon"), "rerank"
    )
    reference = _image_paths(paths, read_manifest(paths.reference_manifest))
    return plan_dualgeo(settings, images, reranked, reference)


def _image_paths(paths: ProjectPaths, manifest: pd.DataFrame) -> dict[str, Path]:
    pairs = zip(manifest["id"], manifest["image"], strict=True)
    return {str(image_id): paths.root / str(image) for image_id, image in pairs}


def _read_table(path: Path, columns: Sequence[str], made_by: str) -> pd.DataFrame:
    if not path.is_file():
        raise LmmStageError(f"{path} is missing: materialize the {made_by} asset first")
    table = pd.read_csv(path, dtype=_TEXT, keep_default_na=False)
    absent = [c for c in columns if c not in table.columns]
    if absent:
        raise LmmStageError(f"{path} lacks columns {absent}; rebuild the {made_by} asset")
    return table


def _write_answers(path: Path, rows: Sequence[tuple[str, str, int, float, float]]) -> None:
    frame = pd.DataFrame(list(rows), columns=list(ANSWER_COLUMNS))
    frame["sample"] = frame["sample"].astype(int)
    text = frame.to_csv(index=False, float_format="%.6f", lineterminator="\n")
    atomic_write_text(path, text)


def _write_summary(
    paths: ProjectPaths, benchmark: str, summary: Mapping[str, Any], mode: str
) -> None:
    text = json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write_text(paths.lmm_summary(benchmark, mode), text)
