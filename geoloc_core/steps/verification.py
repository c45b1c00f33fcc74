"""Step: G3's geo-verification, the decision of each query's coordinates (params
verification), written as the benchmark's predictions.

The pool is the top verification.pool_size re-ranked candidates plus, when G3's
geo-diversification ran, its LMM answers, and the closest points of an optional GPS gallery;
`verify` picks the one whose GPS embedding is closest to the image's GPS-aligned embedding,
`top1` the first re-ranked candidate. When DualGeo's LMM reasoning ran, its answer is the
decision (a query it did not answer keeps the pool's). The predictions keep the retrieval top-1
and the re-ranked top-1 beside the decision, so the metrics show what each stage adds.
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
from geoloc_core.paths import ProjectPaths
from geoloc_core.steps.candidate_files import (
    read_candidates,
    read_query_embeddings,
    read_table,
)
from geoloc_core.steps.lmm import lmm_answers_path, read_lmm_summary
from geoloc_core.steps.rerank import read_reranked
from geoloc_core.steps.training import load_trained
from geoloc_core.verification.geo_verify import closest_gallery_points, verify
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
    pool = reranked[reranked["rank"] < settings.pool_size]
    k = int(pool["rank"].max()) + 1
    by_query = pool.set_index(["query_id", "rank"]).sort_index()
    coords = by_query.loc[ids, ["lat", "lon"]].to_numpy(np.float64).reshape(len(ids), k, 2)
    scores = by_query.loc[ids, "score"].to_numpy(np.float64).reshape(len(ids), k)
    sources = np.full((len(ids), k), "rerank", dtype=object)
    sources[:, 0] = "rerank-top1"
    valid = np.ones((len(ids), k), bool)
    lmm_answers = active_answers(paths, benchmark, "g3")
    if lmm_answers is not None:
        coords, sources, valid = join_pool(ids, coords, sources, valid, lmm_answers)
    if settings.gallery:
        gallery = gallery_candidates(paths, ids, image_gps, settings)
        coords, sources, valid = join_pool(ids, coords, sources, valid, gallery)
    if settings.method == "verify":
        flat = coords[valid]
        encoded = encode_coordinates(paths, flat)
        candidate_gps = np.zeros((*valid.shape, encoded.shape[1]), np.float32)
        candidate_gps[valid] = encoded
        chosen, cosines = verify(image_gps, candidate_gps, valid)
        chosen_score = cosines[np.arange(len(ids)), chosen]
    else:
        chosen = np.zeros(len(ids), np.int64)
        chosen_score = scores[:, 0]
    rows = np.arange(len(ids))
    decision = coords[rows, chosen]
    # object, not str: a fixed-width str array as wide as its longest label ("rerank", when
    # that is every decision) would cut the "lmm-dualgeo" written into it below
    decided_by = sources[rows, chosen].astype(object)
    reasoning = active_answers(paths, benchmark, "dualgeo")
    lmm_decided = 0
    if reasoning is not None:
        first = reasoning.sort_values(["query_id", "sample"]).drop_duplicates("query_id")
        answer = first.set_index("query_id")[["lat", "lon"]]
        has = np.array([i in answer.index for i in ids])
        decision[has] = answer.loc[[i for i in ids if i in answer.index]].to_numpy(np.float64)
        decided_by[has] = "lmm-dualgeo"
        lmm_decided = int(has.sum())
    truth = read_manifest(paths.benchmark_manifest(benchmark)).set_index("id").loc[ids]
    retrieval_top1 = _top1(read_candidates(paths, benchmark), ids)
    table = pd.DataFrame(
        {
            "id": ids,
            "lat": truth["lat"].to_numpy(np.float64),
            "lon": truth["lon"].to_numpy(np.float64),
            "pred_lat": decision[:, 0],
            "pred_lon": decision[:, 1],
            "score": chosen_score,
            "source": decided_by,
            "top1_lat": retrieval_top1[:, 0],
            "top1_lon": retrieval_top1[:, 1],
            "rerank_lat": coords[:, 0, 0],
            "rerank_lon": coords[:, 0, 1],
        }
    )
    write_manifest(table[list(PREDICTION_COLUMNS)], paths.predictions(benchmark))
    summary = {
        "method": settings.method,
        "pool_size": k,
        "pool_extra": int(valid[:, k:].sum()),  # LMM answers and gallery points
        "predictions": len(table),
        "decision_not_top1": int((decided_by != "rerank-top1").sum()),
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


def gallery_candidates(
    paths: ProjectPaths,
    ids: list[str],
    image_gps: np.ndarray,
    settings: VerificationSettings,
) -> pd.DataFrame:
    """Each query's gallery_top gallery points closest to its image in the GPS space."""
    latlon = read_gallery(
        resolve_release_file(str(settings.gallery), GPS_GALLERY_FILE, paths.root)
    )
    chosen = closest_gallery_points(
        image_gps, encode_coordinates(paths, latlon), settings.gallery_top
    )
    points = latlon[chosen.reshape(-1)]
    return pd.DataFrame(
        {
            "query_id": np.repeat(ids, settings.gallery_top),
            "source": "gallery",
            "lat": points[:, 0],
            "lon": points[:, 1],
        }
    )


def join_pool(
    ids: list[str],
    coords: np.ndarray,
    sources: np.ndarray,
    valid: np.ndarray,
    answers: pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pool widened by each query's LMM answers (G3: N generated + S retrieved); slots a
    query does not fill stay invalid."""
    grouped = {q: g for q, g in answers.groupby("query_id", sort=False)}
    extra = max((len(g) for g in grouped.values()), default=0)
    n, k = valid.shape
    wide = np.zeros((n, k + extra, 2))
    wide[:, :k] = coords
    wide_sources = np.full((n, k + extra), "", dtype=object)
    wide_sources[:, :k] = sources
    wide_valid = np.zeros((n, k + extra), bool)
    wide_valid[:, :k] = valid
    for row, query in enumerate(ids):
        group = grouped.get(query)
        if group is None:
            continue
        m = len(group)
        wide[row, k : k + m] = group[["lat", "lon"]].to_numpy(np.float64)
        wide_sources[row, k : k + m] = group["source"].to_numpy()
        wide_valid[row, k : k + m] = True
    return wide, wide_sources, wide_valid


@torch.no_grad()
def encode_coordinates(paths: ProjectPaths, latlon: np.ndarray) -> np.ndarray:
    """Unit GPS embeddings of (n, 2) degrees with the trained model's location encoder."""
    model = load_trained(paths).model
    chunks = [
        model.encode_gps(torch.from_numpy(latlon[s : s + GPS_BATCH].astype(np.float32))).numpy()
        for s in range(0, len(latlon), GPS_BATCH)
    ]
    return np.concatenate(chunks).astype(np.float32)


def _top1(candidates: pd.DataFrame, ids: list[str]) -> np.ndarray:
    first = candidates[(candidates["kind"] == "similar") & (candidates["rank"] == 0)]
    return first.set_index("query_id").loc[ids, ["lat", "lon"]].to_numpy(np.float64)
