"""Step: G3's geo-verification, the decision of each query's coordinates (params
verification), written as the benchmark's predictions.

The pool is the top verification.pool_size re-ranked candidates plus, when G3's
geo-diversification ran, its LMM answers, and the closest points of an optional GPS gallery;
`verify` picks the one whose GPS embedding is closest to the image's GPS-aligned embedding,
`top1` the first re-ranked candidate. When DualGeo's LMM reasoning ran, its answer is the
decision (a query it did not answer keeps the pool's). The predictions keep the retrieval top-1
and the re-ranked top-1 beside the decision, so the metrics show what each stage adds.

This step reads the benchmark's files; the pool and the decision themselves are the inference
chain's (inference/pool.py, inference/decision.py), which `geoloc predict` and the served model
share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from geoloc_core.confidence.calibration import Calibration
from geoloc_core.confidence.table import confidence_table, empty_confidence
from geoloc_core.data.manifest import read_manifest, write_manifest
from geoloc_core.inference.decision import Decision, decide, first_answers
from geoloc_core.inference.pool import (
    SOURCE_TOP1,
    CandidatePool,
    ExtraPoints,
    Gallery,
    answer_extras,
    candidate_pool,
)
from geoloc_core.models.alignment import GeoAlignmentModel
from geoloc_core.paths import PREDICTION_COLUMNS, ProjectPaths
from geoloc_core.steps.tables import (
    active_answers,
    read_candidates,
    read_query_embeddings,
    read_reranked,
)
from geoloc_core.steps.training import load_trained
from geoloc_core.verification.gallery import load_gallery
from geoloc_core.verification.gps_encoder import encode_coordinates
from geoloc_core.verification.settings import VerificationSettings


@dataclass(frozen=True)
class BenchmarkDecision:
    """One benchmark's decisions as the chain made them, with what they were chosen from."""

    ids: list[str]
    pool: CandidatePool
    decision: Decision
    reasoning_ran: bool  # DualGeo's LMM reasoning decided where it answered


def decide_benchmark(
    paths: ProjectPaths, benchmark: str, settings: VerificationSettings
) -> BenchmarkDecision | None:
    """The benchmark's pool and decision from its files (None: it has no queries). The
    verification step and the confidence calibration both take the decisions from here."""
    reranked = read_reranked(paths, benchmark)
    ids, image_gps = read_query_embeddings(paths, benchmark)
    if not ids:
        return None
    needs_model = settings.method == "verify" or bool(settings.gallery)
    model = load_trained(paths).model if needs_model else None
    pool_rows = reranked[reranked["rank"] < settings.pool_size]
    k = int(pool_rows["rank"].max()) + 1
    by_query = pool_rows.set_index(["query_id", "rank"]).sort_index()
    coords = by_query.loc[ids, ["lat", "lon"]].to_numpy(np.float64).reshape(len(ids), k, 2)
    scores = by_query.loc[ids, "score"].to_numpy(np.float64).reshape(len(ids), k)
    lmm_answers = active_answers(paths, benchmark, "g3")
    pool = candidate_pool(
        coords,
        scores,
        settings.pool_size,
        image_gps,
        lmm_extras=None if lmm_answers is None else extras_by_query(ids, lmm_answers),
        gallery=_gallery(paths, model, settings) if settings.gallery else None,
    )
    reasoning = active_answers(paths, benchmark, "dualgeo")
    decision = decide(
        pool,
        image_gps,
        settings.method,
        lambda latlon: encode_coordinates(model, latlon),
        reasoning=None if reasoning is None else _first_answers(ids, reasoning),
    )
    return BenchmarkDecision(ids, pool, decision, reasoning is not None)


def verify_benchmark(
    paths: ProjectPaths,
    benchmark: str,
    verification_section: Mapping[str, Any],
    calibration: Calibration | None = None,
) -> dict[str, Any]:
    """The benchmark's predictions; with a calibration, each decision's confidence radii and
    the features they come from beside it (without: the decision alone, as the ablation
    measures it)."""
    settings = VerificationSettings.from_section(verification_section)
    decided = decide_benchmark(paths, benchmark, settings)
    if decided is None:
        return _no_queries(paths, benchmark, settings, calibration)
    ids, pool, decision = decided.ids, decided.pool, decided.decision
    k = pool.reranked
    truth = read_manifest(paths.benchmark_manifest(benchmark)).set_index("id").loc[ids]
    retrieval_top1 = _top1(read_candidates(paths, benchmark), ids)
    table = pd.DataFrame(
        {
            "id": ids,
            "lat": truth["lat"].to_numpy(np.float64),
            "lon": truth["lon"].to_numpy(np.float64),
            "pred_lat": decision.latlon[:, 0],
            "pred_lon": decision.latlon[:, 1],
            "score": decision.score,
            "source": decision.source,
            "top1_lat": retrieval_top1[:, 0],
            "top1_lon": retrieval_top1[:, 1],
            "rerank_lat": pool.coords[:, 0, 0],
            "rerank_lon": pool.coords[:, 0, 1],
        }
    )
    columns = list(PREDICTION_COLUMNS)
    if calibration is not None:
        confidence = confidence_table(calibration, benchmark, ids, pool, decision)
        table = pd.concat([table, confidence.predictions], axis=1)
        columns += list(confidence.predictions.columns)
        write_manifest(confidence.curve, paths.radii(benchmark))
    write_manifest(table[columns], paths.predictions(benchmark))
    lmm_decided = int(decision.by_reasoning.sum())
    summary = {
        "method": settings.method,
        "pool_size": k,
        "pool_extra": int(pool.valid[:, k:].sum()),  # LMM answers and gallery points
        "predictions": len(table),
        "decision_not_top1": int((decision.source != SOURCE_TOP1).sum()),
        "decided_by_lmm_reasoning": lmm_decided,
    }
    if decided.reasoning_ran:
        summary["lmm_reasoning_fallbacks"] = len(ids) - lmm_decided
    return summary


def _no_queries(
    paths: ProjectPaths,
    benchmark: str,
    settings: VerificationSettings,
    calibration: Calibration | None,
) -> dict[str, Any]:
    """An empty benchmark: empty predictions with the usual columns, and counts of 0."""
    columns = list(PREDICTION_COLUMNS)
    if calibration is not None:
        empty = empty_confidence(calibration)
        columns += list(empty.predictions.columns)
        write_manifest(empty.curve, paths.radii(benchmark))
    write_manifest(pd.DataFrame(columns=columns), paths.predictions(benchmark))
    return {
        "method": settings.method,
        "pool_size": 0,
        "pool_extra": 0,
        "predictions": 0,
        "decision_not_top1": 0,
        "decided_by_lmm_reasoning": 0,
        "skipped": "the benchmark has no queries",
    }


def _gallery(
    paths: ProjectPaths, model: GeoAlignmentModel, settings: VerificationSettings
) -> Gallery:
    """verification.gallery's points and their GPS embeddings."""
    latlon = load_gallery(str(settings.gallery), paths.root)
    return Gallery(latlon, encode_coordinates(model, latlon), settings.gallery_top)


def extras_by_query(ids: list[str], answers: pd.DataFrame) -> list[ExtraPoints | None]:
    """Each query's LMM answers (query_id, source, lat, lon rows, in file order) as its pool's
    extra points; None for a query without answers."""
    latlon = answers[["lat", "lon"]].to_numpy(np.float64)
    return answer_extras(ids, answers["query_id"].tolist(), answers["source"].tolist(), latlon)


def _first_answers(ids: list[str], reasoning: pd.DataFrame) -> list[tuple[float, float] | None]:
    """DualGeo's decision per query: its first answer (lowest sample), None without one."""
    latlon = reasoning[["lat", "lon"]].to_numpy(np.float64)
    return first_answers(ids, reasoning["query_id"].tolist(), reasoning["sample"].tolist(), latlon)


def _top1(candidates: pd.DataFrame, ids: list[str]) -> np.ndarray:
    first = candidates[(candidates["kind"] == "similar") & (candidates["rank"] == 0)]
    return first.set_index("query_id").loc[ids, ["lat", "lon"]].to_numpy(np.float64)
