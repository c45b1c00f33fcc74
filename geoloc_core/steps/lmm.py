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

The per-query prompt builders (g3_query_jobs, dualgeo_query_job) and the run over them
(ask_lmm) take photos as files or bytes: `geoloc predict` and the served model ask with them.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from geoloc_core.data.manifest import read_manifest
from geoloc_core.lmm.answers import DropCounts, ParsedAnswer, parse_answer
from geoloc_core.lmm.backend import Backend
from geoloc_core.lmm.cache import JsonRecordCache, atomic_write_text
from geoloc_core.lmm.errors import LmmStageError
from geoloc_core.lmm.prompts import (
    Candidate,
    Messages,
    dualgeo_messages,
    g3_rag_messages,
    g3_zero_shot_messages,
    image_data_url,
    load_image_url,
)
from geoloc_core.lmm.runner import JobResult, PromptJob, SampleRunner
from geoloc_core.lmm.settings import LmmSettings
from geoloc_core.paths import ProjectPaths
from geoloc_core.steps.candidate_files import candidates_file
from geoloc_core.steps.rerank import rerank_file

ANSWER_COLUMNS = ("query_id", "source", "sample", "lat", "lon")
SOURCE_ZERO_SHOT = "lmm-zero-shot"
SOURCE_DUALGEO = "lmm-dualgeo"
_TEXT = {"query_id": str, "ref_id": str, "kind": str, "place": str}
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


def rag_source(size: int) -> str:
    return SOURCE_ZERO_SHOT if size == 0 else f"lmm-rag-{size}"


# Where each mode's answers go: G3's geo-diversification feeds the verification pool; DualGeo's
# reasoning over the re-ranked candidates is the decision.
OUTPUT_FOLDERS = {"g3": "lmm", "dualgeo": "lmm_reasoning"}


def lmm_answers_path(paths: ProjectPaths, benchmark: str, mode: str = "g3") -> Path:
    return paths.artifacts / OUTPUT_FOLDERS[mode] / f"{benchmark}.csv"


def lmm_summary_path(paths: ProjectPaths, benchmark: str, mode: str = "g3") -> Path:
    return paths.artifacts / OUTPUT_FOLDERS[mode] / f"{benchmark}.summary.json"


def read_lmm_summary(paths: ProjectPaths, benchmark: str, mode: str) -> dict[str, Any] | None:
    """The summary of that mode's last run, or None when it never ran."""
    path = lmm_summary_path(paths, benchmark, mode)
    return json.loads(path.read_text()) if path.is_file() else None


# A photo to send: a file (or tar member) of the project, or its bytes (the served model).
ImageSource = Path | bytes
# A re-ranked candidate as DualGeo shows it: lat, lon, place name, its reference photo.
ShownCandidate = tuple[float, float, str, Path | None]
# One parsed answer: (query position, source position), sample, query_id, source, lat, lon.
AnswerRow = tuple[tuple[int, int], int, str, str, float, float]


@dataclass(frozen=True)
class Tag:
    """Which query and source a prompt's answers belong to (and where they sort)."""

    query_id: str
    source: str
    order: tuple[int, int]  # (query position in the manifest, source position)


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
    answers_file = lmm_answers_path(paths, benchmark, for_mode)
    summary = _empty_summary(settings, benchmark)
    reason = _skip_reason(paths, benchmark, settings, for_mode)
    if reason:
        _write_answers(answers_file, [])
        summary["skipped"] = True
        summary["skip_reason"] = reason
        _write_summary(paths, benchmark, summary, for_mode)
        log(f"lmm {benchmark}: skipped ({reason})")
        return summary

    backend = lmm_backend(settings)
    manifest = read_manifest(paths.benchmark_manifest(benchmark))
    plan = _plan(paths, benchmark, settings, manifest)
    summary.update(plan.counts)
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
    rows, drops, by_source = answers.rows, answers.drops, answers.by_source
    _write_answers(answers_file, [(q, source, sample, a, b) for _, sample, q, source, a, b in rows])

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
            "answers_kept": len(rows),
            "answers_by_source": dict(sorted(by_source.items())),
            "drops": drops.as_dict(),
            "drops_total": drops.total,
            "reference_images_unreadable": plan.unreadable_references.count,
        }
    )
    _write_summary(paths, benchmark, summary, for_mode)
    log(_summary_line(benchmark, summary))
    if summary["stopped_reason"]:
        raise LmmStageError(
            f"the LMM server refused the requests ({summary['stopped_reason']}): check "
            f"lmm.model, lmm.base_url and the key in ${settings.api_key_env}; the "
            f"{summary['answers_kept']} answers so far are written and cached"
        )
    return summary


def _skip_reason(
    paths: ProjectPaths, benchmark: str, settings: LmmSettings, for_mode: str
) -> str:
    """Why this step asks nothing ("" when it asks): provider none, the other mode, or an
    empty benchmark (its data set absent), which then needs no server, key or candidates."""
    if settings.provider == "none":
        return "lmm.provider is none (G3 without geo-diversification)"
    if settings.mode != for_mode:
        return f"lmm.mode is {settings.mode}; this step serves mode {for_mode}"
    if read_manifest(paths.benchmark_manifest(benchmark)).empty:
        return f"benchmark {benchmark} has no queries"
    return ""


# -- backends ----------------------------------------------------------------------------


def lmm_backend(settings: LmmSettings) -> Backend:
    """The configured model: an OpenAI-compatible server (its key read from the environment
    variable lmm.api_key_env, now) or a transformers checkpoint in this process."""
    if settings.provider == "openai":
        from geoloc_core.lmm.client import OpenAIBackend

        return OpenAIBackend(settings)
    from geoloc_core.lmm.local import TransformersBackend  # torch/transformers: only if used

    return TransformersBackend(settings)


# -- what to ask -------------------------------------------------------------------------


class Tally:
    """A counter the prompt-building worker threads share."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.count += 1


@dataclass
class _Plan:
    jobs: list[PromptJob] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    short: dict[int, int] = field(default_factory=dict)  # rag size -> queries skipped
    unreadable_references: Tally = field(default_factory=Tally)


def _plan(
    paths: ProjectPaths, benchmark: str, settings: LmmSettings, manifest: pd.DataFrame
) -> _Plan:
    images = _image_paths(paths, manifest)
    order = {query_id: position for position, query_id in enumerate(images)}
    plan = _Plan()
    if settings.mode == "g3":
        _plan_g3(paths, benchmark, settings, images, order, plan)
    else:
        _plan_dualgeo(paths, benchmark, settings, images, order, plan)
    return plan


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


def _points(table: pd.DataFrame) -> list[tuple[float, float]]:
    ordered = table.sort_values("rank", kind="stable")
    return [(float(a), float(b)) for a, b in zip(ordered["lat"], ordered["lon"], strict=True)]


def _plan_g3(
    paths: ProjectPaths,
    benchmark: str,
    settings: LmmSettings,
    images: Mapping[str, Path],
    order: Mapping[str, int],
    plan: _Plan,
) -> None:
    needs_candidates = any(size > 0 for size in settings.g3_rag_sizes)
    groups: dict[str, pd.DataFrame] = {}
    if needs_candidates:
        table = _read_table(
            candidates_file(paths, benchmark),
            ("query_id", "kind", "rank", "lat", "lon"),
            "candidates",
        )
        groups = {str(k): g for k, g in table.groupby("query_id", sort=False)}
    short: Counter[int] = Counter()
    without = 0
    for query_id, image in images.items():
        group = groups.get(query_id)
        if needs_candidates and group is None:
            without += 1
        similar = _points(group[group["kind"] == "similar"]) if group is not None else []
        dissimilar = _points(group[group["kind"] == "dissimilar"]) if group is not None else []
        jobs, skipped = g3_query_jobs(
            settings, query_id, image, similar, dissimilar, order[query_id]
        )
        plan.jobs.extend(jobs)
        short.update(skipped)
    plan.short = dict(sorted(short.items()))
    plan.counts = {
        "queries": len(images),
        "queries_without_candidates": without,
        "prompts_skipped_short": sum(short.values()),
    }


def g3_query_jobs(
    settings: LmmSettings,
    query_id: str,
    image: ImageSource,
    similar: Sequence[tuple[float, float]],
    dissimilar: Sequence[tuple[float, float]],
    position: int,
) -> tuple[list[PromptJob], list[int]]:
    """G3's prompts for one query, one per size r in lmm.g3_rag_sizes (r = 0: zero-shot; r > 0:
    the first r similar and r dissimilar coordinates, in retrieval order), and the sizes
    skipped because the query has fewer than r of either. position orders the query's answers
    among the others'."""
    jobs: list[PromptJob] = []
    short: list[int] = []
    for rank, size in enumerate(settings.g3_rag_sizes):
        if size > 0 and (len(similar) < size or len(dissimilar) < size):
            short.append(size)
            continue
        tag = Tag(query_id, rag_source(size), (position, rank))
        build = _g3_builder(settings, image, list(similar[:size]), list(dissimilar[:size]))
        jobs.append(PromptJob(tag, build))
    return jobs, short


def image_url(image: ImageSource) -> str:
    """A data URL of a photo given as a file (or tar member) or as its bytes."""
    return image_data_url(image) if isinstance(image, bytes) else load_image_url(image)


def _g3_builder(
    settings: LmmSettings,
    image: ImageSource,
    similar: list[tuple[float, float]],
    dissimilar: list[tuple[float, float]],
) -> Callable[[], Messages]:
    def build() -> Messages:
        url = image_url(image)
        if not similar:
            return g3_zero_shot_messages(settings, url)
        return g3_rag_messages(settings, url, similar, dissimilar)

    return build


def _plan_dualgeo(
    paths: ProjectPaths,
    benchmark: str,
    settings: LmmSettings,
    images: Mapping[str, Path],
    order: Mapping[str, int],
    plan: _Plan,
) -> None:
    table = _read_table(
        rerank_file(paths, benchmark), ("query_id", "rank", "ref_id", "lat", "lon"), "rerank"
    )
    if "place" not in table.columns:
        table["place"] = ""
    reference = read_manifest(paths.reference_manifest)
    ref_images = _image_paths(paths, reference)
    groups = {str(k): g for k, g in table.groupby("query_id", sort=False)}
    without = 0
    for query_id, image in images.items():
        group = groups.get(query_id)
        if group is None or group.empty:
            without += 1
            continue
        top = group.sort_values("rank", kind="stable").head(settings.dualgeo_top_m)
        shown = [
            (float(r.lat), float(r.lon), str(r.place), ref_images.get(str(r.ref_id)))
            for r in top.itertuples()
        ]
        job = dualgeo_query_job(
            settings, query_id, image, shown, order[query_id], plan.unreadable_references
        )
        plan.jobs.append(job)
    plan.counts = {"queries": len(images), "queries_without_candidates": without}


def dualgeo_query_job(
    settings: LmmSettings,
    query_id: str,
    image: ImageSource,
    shown: Sequence[ShownCandidate],
    position: int,
    unreadable: Tally,
) -> PromptJob:
    """DualGeo's prompt for one query: the photo, then the re-ranked candidates shown (lat,
    lon, place name, reference photo or None), most likely first; reference photos that
    cannot be read are counted in unreadable and shown without their photo."""
    tag = Tag(query_id, SOURCE_DUALGEO, (position, 0))
    return PromptJob(tag, _dualgeo_builder(settings, image, list(shown), unreadable))


def _dualgeo_builder(
    settings: LmmSettings,
    image: ImageSource,
    shown: list[ShownCandidate],
    unreadable: Tally,
) -> Callable[[], Messages]:
    def reference_url(path: Path | None) -> str | None:
        try:
            if path is None:
                raise FileNotFoundError("reference id not in the reference manifest")
            return load_image_url(path)
        except Exception:  # the candidate is still shown, with its coordinates and place
            unreadable.add()
            return None

    def build() -> Messages:
        url = image_url(image)
        candidates = [Candidate(a, b, place, reference_url(ref)) for a, b, place, ref in shown]
        return dualgeo_messages(settings, url, candidates)

    return build


# -- what came back ----------------------------------------------------------------------


@dataclass
class LmmAnswers:
    """What one run of prompts gave: the answers that parse, sorted by (query position, source
    position, sample), what was dropped, and the runner's counts."""

    rows: list[AnswerRow]
    drops: DropCounts
    by_source: Counter[str]
    stats: dict[str, Any]
    estimated_cost: float

    def by_query(self) -> dict[str, list[AnswerRow]]:
        """Each query's answers, in order."""
        grouped: dict[str, list[AnswerRow]] = {}
        for row in self.rows:
            grouped.setdefault(row[2], []).append(row)
        return grouped


def ask_lmm(
    settings: LmmSettings,
    backend: Backend,
    cache: JsonRecordCache | None,
    jobs: Sequence[PromptJob],
    progress: bool,
    desc: str,
) -> LmmAnswers:
    """Every job's lmm.n answers through the runner (cache, budget, retries), parsed."""
    runner = SampleRunner(settings, backend, cache)
    rows: list[AnswerRow] = []
    drops = DropCounts()
    by_source: Counter[str] = Counter()
    with tqdm(total=len(jobs), desc=desc, unit="prompt", disable=not progress) as bar:
        for result in runner.run(jobs):
            _collect(result, rows, drops, by_source)
            bar.update(1)
    rows.sort(key=lambda row: (row[0], row[1]))
    return LmmAnswers(rows, drops, by_source, runner.stats.as_dict(), runner.estimated_cost())


def _collect(
    result: JobResult,
    rows: list[AnswerRow],
    drops: DropCounts,
    by_source: Counter[str],
) -> None:
    tag: Tag = result.tag
    for sample, text in enumerate(result.texts):
        if text is None:
            continue  # never answered: counted as samples_missing, not as a drop
        parsed = parse_answer(text)
        if isinstance(parsed, ParsedAnswer):
            rows.append((tag.order, sample, tag.query_id, tag.source, parsed.lat, parsed.lon))
            by_source[tag.source] += 1
        else:
            drops.add(parsed)


def _write_answers(path: Path, rows: Sequence[tuple[str, str, int, float, float]]) -> None:
    frame = pd.DataFrame(list(rows), columns=list(ANSWER_COLUMNS))
    frame["sample"] = frame["sample"].astype(int)
    text = frame.to_csv(index=False, float_format="%.6f", lineterminator="\n")
    atomic_write_text(path, text)


def _write_summary(
    paths: ProjectPaths, benchmark: str, summary: Mapping[str, Any], mode: str
) -> None:
    text = json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write_text(lmm_summary_path(paths, benchmark, mode), text)


def _empty_summary(settings: LmmSettings, benchmark: str) -> dict[str, Any]:
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


def _summary_line(benchmark: str, summary: Mapping[str, Any]) -> str:
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
