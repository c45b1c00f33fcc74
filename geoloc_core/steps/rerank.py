"""Step: DualGeo's geographic re-rank of each query's similar candidates (params rerank).

Only the similar candidates are re-ranked; the dissimilar ones are G3's negative neighbours and
keep their place in the candidates file. The re-rank itself is the inference chain's
(inference/rerank.py); this step reads the candidates and writes them in the new order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from geoloc_core.data.manifest import write_manifest
from geoloc_core.inference.rerank import rerank_neighbours
from geoloc_core.paths import RERANK_COLUMNS, ProjectPaths
from geoloc_core.rerank.settings import RerankSettings
from geoloc_core.steps.tables import read_candidates


def _similar_matrix(candidates: pd.DataFrame) -> pd.DataFrame:
    """The similar candidates sorted by (query, rank), checked to be k per query."""
    similar = candidates[candidates["kind"] == "similar"].sort_values(
        ["query_id", "rank"], kind="stable"
    )
    counts = similar.groupby("query_id", sort=False).size()
    if counts.nunique() != 1:
        raise ValueError(
            f"queries have different candidate counts ({sorted(counts.unique())}): "
            "re-materialize candidates"
        )
    return similar.reset_index(drop=True)


def rerank_candidates(
    paths: ProjectPaths, benchmark: str, rerank_section: Mapping[str, Any]
) -> dict[str, Any]:
    settings = RerankSettings.from_section(rerank_section)
    candidates = read_candidates(paths, benchmark)
    if candidates.empty:
        return _no_queries(paths, benchmark, settings)
    similar = _similar_matrix(candidates)
    queries = similar["query_id"].drop_duplicates().tolist()
    k = len(similar) // len(queries)
    lat = similar["lat"].to_numpy(np.float64).reshape(-1, k)
    lon = similar["lon"].to_numpy(np.float64).reshape(-1, k)
    reranked = rerank_neighbours(lat, lon, settings)
    order, labels = reranked.order, reranked.labels
    base = np.arange(len(queries))[:, None] * k
    picked = (base + order).reshape(-1)
    table = similar.iloc[picked].reset_index(drop=True)
    table["orig_rank"] = table["rank"]
    table["rank"] = np.tile(np.arange(k), len(queries))
    table["cluster"] = reranked.reorder(labels).reshape(-1)
    write_manifest(table[list(RERANK_COLUMNS)], paths.reranked(benchmark))
    clustered = reranked.clustered
    moved = order[:, 0] != 0
    return {
        "method": settings.method,
        "queries": len(queries),
        "top_k": k,
        "queries_with_cluster": int(clustered.sum()),
        "top1_changed": int(moved.sum()),
        "mean_largest_cluster": float(
            np.mean([np.bincount(r[r >= 0]).max() for r in labels if (r >= 0).any()])
        )
        if clustered.any()
        else 0.0,
    }


def _no_queries(paths: ProjectPaths, benchmark: str, settings: RerankSettings) -> dict[str, Any]:
    """An empty benchmark: an empty re-ranked file with the usual columns, and counts of 0."""
    write_manifest(pd.DataFrame(columns=list(RERANK_COLUMNS)), paths.reranked(benchmark))
    return {
        "method": settings.method,
        "queries": 0,
        "top_k": 0,
        "queries_with_cluster": 0,
        "top1_changed": 0,
        "skipped": "the benchmark has no queries",
    }
