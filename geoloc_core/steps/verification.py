"""Step: G3's geo-verification, the decision of each query's coordinates (params
verification), written as the benchmark's predictions.

The pool is the top verification.pool_size re-ranked candidates plus, when G3's
geo-diversification ran, its LMM answers, and the closest points of an optional GPS gallery;
`verify` picks the one whose GPS embedding is closest to the image's GPS-aligned embedding,
`top1` the first re-ranked candidate. When DualGeo's LMM reasoning ran, its answer is the
decision (a query it did not answer keeps the pool's). The predictions keep the retrieval top-1
and the re-ranked top-1 beside the decision, so the metrics show what each stage adds.

This step reads the benchmark's files; the pool and the decision themselves are
verification/pool.py's, the in-memory core `geoloc predict` and the served model share.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from geoloc_core.data.manifest import read_manifest, write_manifest
from geoloc_core.encoders.geoclip_files import GPS_GALLERY_FILE, resolve_release_file
from geoloc_core.geo.distance import validated_lat_lon
from geoloc_core.models.alignment import GeoAlignmentModel
from geoloc_core.paths import ProjectPaths
from geoloc_core.steps.candidate_files import (
    read_candidates,
    read_query_embeddings,
    read_table,
)
from geoloc_core.steps.lmm import lmm_answers_path, read_lmm_summary
from geoloc_core.steps.rerank import read_reranked
from geoloc_core.steps.training import load_trained
from geoloc_core.verification.pool import (
    SOURCE_TOP1,
    ExtraPoints,
    decide,
    gallery_extras,
    reranked_pool,
    widen_pool,
    with_reasoning,
)
from geoloc_core.verification.settings import VerificationSettings

GPS_BATCH = 65536
PREDICTION_COLUMNS = (
    "id",
    "lat",
    "lon",
    "pred_lat",
    "pred_lon",
    "score",
    "source",
    "top1_lat",
    "top1_lon",
    "rerank_lat",
    "rerank_lon",
)


def verify_benchmark(
    paths: ProjectPaths, benchmark: str, verification_section: Mapping[str, Any]
) -> dict[str, Any]:
    settings = VerificationSettings.from_section(verification_section)
    reranked = read_reranked(paths, benchmark)
    ids, image_gps = read_query_embeddings(paths, benchmark)
    if not ids:
        return _no_queries(paths, benchmark, settings)
    needs_model = settings.method == "verify" or bool(settings.gallery)
    model = load_trained(paths).model if needs_model else None
    pool_rows = reranked[reranked["rank"] < settings.pool_size]
    k = int(pool_rows["rank"].max()) + 1
    by_query = pool_rows.set_index(["query_id", "rank"]).sort_index()
    coords = by_query.loc[ids, ["lat", "lon"]].to_numpy(np.float64).reshape(len(ids), k, 2)
    scores = by_query.loc[ids, "score"].to_numpy(np.float64).reshape(len(ids), k)
    pool = reranked_pool(coords, scores)
    lmm_answers = active_answers(paths, benchmark, "g3")
    if lmm_answers is not None:
        pool = widen_pool(pool, extras_by_query(ids, lmm_answers))
    if settings.gallery:
        pool = widen_pool(pool, gallery_candidates(paths, model, image_gps, settings))
    decision = decide(
        pool, image_gps, settings.method, lambda latlon: encode_coordinates(model, latlon)
    )
    reasoning = active_answers(paths, benchmark, "dualgeo")
    if reasoning is not None:
        decision = with_reasoning(decision, first_answers(ids, reasoning))
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
    write_manifest(table[list(PREDICTION_COLUMNS)], paths.predictions(benchmark))
    lmm_decided = int(decision.by_reasoning.sum())
    summary = {
        "method": settings.method,
        "pool_size": k,
        "pool_extra": int(pool.valid[:, k:].sum()),  # LMM answers and gallery points
        "predictions": len(table),
        "decision_not_top1": int((decision.source != SOURCE_TOP1).sum()),
        "decided_by_lmm_reasoning": lmm_decided,
    }
    if reasoning is not None:
        summary["lmm_reasoning_fallbacks"] = len(ids) - lmm_decided
    return summary


def _no_queries(
    paths: ProjectPaths, benchmark: str, settings: VerificationSettings
) -> dict[str, Any]:
    """An empty benchmark: empty predictions with the usual columns, and counts of 0."""
    write_manifest(pd.DataFrame(columns=list(PREDICTION_COLUMNS)), paths.predictions(benchmark))
    return {
        "method": settings.method,
        "pool_size": 0,
        "pool_extra": 0,
        "predictions": 0,
        "decision_not_top1": 0,
        "decided_by_lmm_reasoning": 0,
        "skipped": "the benchmark has no queries",
    }


def active_answers(paths: ProjectPaths, benchmark: str, mode: str) -> pd.DataFrame | None:
    """That mode's LMM answers, or None when its step was skipped (provider none, other
    mode) or never ran."""
    summary = read_lmm_summary(paths, benchmark, mode)
    if summary is None or summary.get("skipped"):
        return None
    return read_table(lmm_answers_path(paths, benchmark, mode), ("query_id", "source"))


def read_gallery(path: Path) -> np.ndarray:
    """(m, 2) degrees from a CSV with lat/lon columns (any case: GeoCLIP's file says LAT,
    LON), every row checked."""
    if not path.is_file():
        raise FileNotFoundError(f"verification.gallery {path} does not exist")
    table = pd.read_csv(path)
    columns = {c.lower(): c for c in table.columns}
    if "lat" not in columns or "lon" not in columns:
        raise ValueError(f"{path} needs lat and lon columns, has {list(table.columns)}")
    latlon = table[[columns["lat"], columns["lon"]]].to_numpy(np.float64)
    validated_lat_lon(latlon[:, 0], latlon[:, 1])
    return latlon


def load_gallery(setting: str, root: Path) -> np.ndarray:
    """verification.gallery as (m, 2) degrees: `geoclip` (the wheel's file) or a CSV path
    relative to root."""
    return read_gallery(resolve_release_file(setting, GPS_GALLERY_FILE, root))


def gallery_candidates(
    paths: ProjectPaths,
    model: GeoAlignmentModel,
    image_gps: np.ndarray,
    settings: VerificationSettings,
) -> list[ExtraPoints]:
    """Each query's gallery_top gallery points closest to its image in the GPS space."""
    latlon = load_gallery(str(settings.gallery), paths.root)
    return gallery_extras(
        image_gps, latlon, encode_coordinates(model, latlon), settings.gallery_top
    )


def extras_by_query(ids: list[str], answers: pd.DataFrame) -> list[ExtraPoints | None]:
    """Each query's LMM answers (query_id, source, lat, lon rows, in file order) as its pool's
    extra points; None for a query without answers."""
    grouped = {q: g for q, g in answers.groupby("query_id", sort=False)}
    extras: list[ExtraPoints | None] = []
    for query in ids:
        group = grouped.get(query)
        if group is None:
            extras.append(None)
        else:
            points = group[["lat", "lon"]].to_numpy(np.float64)
            extras.append(ExtraPoints(points, group["source"].to_numpy()))
    return extras


def first_answers(ids: list[str], reasoning: pd.DataFrame) -> list[tuple[float, float] | None]:
    """DualGeo's decision per query: its first answer (lowest sample), None without one."""
    first = reasoning.sort_values(["query_id", "sample"]).drop_duplicates("query_id")
    answer = first.set_index("query_id")[["lat", "lon"]]
    return [
        (float(answer.at[q, "lat"]), float(answer.at[q, "lon"])) if q in answer.index else None
        for q in ids
    ]


@torch.no_grad()
def encode_coordinates(model: GeoAlignmentModel, latlon: np.ndarray) -> np.ndarray:
    """Unit GPS embeddings of (n, 2) degrees with the trained model's location encoder."""
    chunks = [
        model.encode_gps(torch.from_numpy(latlon[s : s + GPS_BATCH].astype(np.float32))).numpy()
        for s in range(0, len(latlon), GPS_BATCH)
    ]
    return np.concatenate(chunks).astype(np.float32)


def _top1(candidates: pd.DataFrame, ids: list[str]) -> np.ndarray:
    first = candidates[(candidates["kind"] == "similar") & (candidates["rank"] == 0)]
    return first.set_index("query_id").loc[ids, ["lat", "lon"]].to_numpy(np.float64)
