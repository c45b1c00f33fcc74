"""Step: each benchmark query's candidates — the top-k most similar reference images and the
top-k least similar (search with the negated query, G3's dissimilar neighbours) — with their
coordinates, scores and place names, plus the query's GPS-aligned embedding for verification.

Queries are embedded from the same caches as the reference set, with the parts the index was
built from (its record), so index and queries cannot disagree. The search itself is the
inference chain's (inference/search.py); this step embeds, searches and writes the tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from geoloc_core.data.manifest import read_manifest, write_manifest
from geoloc_core.inference.search import Neighbours, search_neighbours
from geoloc_core.paths import CANDIDATE_COLUMNS, QUERY_ID_COLUMNS, ProjectPaths
from geoloc_core.retrieval.index import index_for_search, load_index
from geoloc_core.retrieval.index_record import index_record
from geoloc_core.retrieval.index_settings import IndexSettings
from geoloc_core.retrieval.settings import RetrievalSettings
from geoloc_core.steps.training import load_trained
from geoloc_core.text.place_labels import place_names
from geoloc_core.training.dataset import AlignmentData
from geoloc_core.training.embed import embed_queries
from geoloc_core.training.project_inputs import model_inputs, rows_with_inputs


def build_candidates(
    paths: ProjectPaths,
    benchmark: str,
    retrieval_section: Mapping[str, Any],
    index_section: Mapping[str, Any],
) -> dict[str, Any]:
    settings = RetrievalSettings.from_section(retrieval_section)
    index_settings = IndexSettings.from_section(index_section)
    trained = load_trained(paths)
    record = index_record(paths)
    features, segmentation = model_inputs(paths, trained)
    manifest = read_manifest(paths.benchmark_manifest(benchmark))
    rows, missing = rows_with_inputs(manifest, features, segmentation)
    if rows.empty and not manifest.empty:
        raise ValueError(
            f"no image of benchmark '{benchmark}' has cached inputs ({len(missing)} missing, "
            "e.g. " + "; ".join(missing["reason"].head(3)) + "): materialize backbone_features"
            " and segmentation_cache with this benchmark in params benchmarks.names"
        )
    index = index_for_search(load_index(paths.index_file), index_settings)
    if rows.empty:  # an empty benchmark (its data set is absent): 0 queries, 0 candidates
        queries = np.zeros((0, index.d), np.float32)
        gps_aligned = np.zeros((0, trained.model.config.embed_dim), np.float32)
    else:
        data = AlignmentData(rows["id"].tolist(), features, segmentation)
        queries, gps_aligned = embed_queries(
            trained.model, data, progress=True, desc=benchmark, parts=tuple(record["parts"])
        )
    meta = read_manifest(paths.index_meta)
    places = place_names(paths.place_texts)
    found = search_neighbours(index, queries, settings, index_settings)
    frames = [_ranked(rows, meta, places, kind, n) for kind, n in found.by_kind()]
    table = pd.concat(frames, ignore_index=True)
    write_manifest(table[list(CANDIDATE_COLUMNS)], paths.candidates(benchmark))
    vectors_file, ids_file = paths.query_embeddings(benchmark)
    tmp = vectors_file.with_name(vectors_file.name + ".tmp.npy")
    np.save(tmp, gps_aligned)
    tmp.replace(vectors_file)
    write_manifest(rows[list(QUERY_ID_COLUMNS)], ids_file)
    return _summary(rows, missing, table, settings, record)


def _summary(
    rows: pd.DataFrame,
    missing: pd.DataFrame,
    table: pd.DataFrame,
    settings: RetrievalSettings,
    record: Mapping[str, Any],
) -> dict[str, Any]:
    """Counts and scores of the candidates; with no query, counts only (a mean of nothing is
    not a score)."""
    similar = table[table["kind"] == "similar"]
    summary: dict[str, Any] = {
        "queries": len(rows),
        "failed_images": len(missing),
        "top_k": int(similar["rank"].max()) + 1 if len(similar) else 0,
        "dissimilar_k": settings.dissimilar_k,
        "parts": "+".join(record["parts"]),
        "unnamed_candidates": int((table["place"] == "").sum()),
    }
    if len(similar):
        summary["mean_top1_score"] = float(similar.loc[similar["rank"] == 0, "score"].mean())
    else:
        summary["skipped"] = "the benchmark has no queries"
    return summary


def _ranked(
    rows: pd.DataFrame,
    meta: pd.DataFrame,
    places: Mapping[str, str],
    kind: str,
    neighbours: Neighbours,
) -> pd.DataFrame:
    """One row per (query, rank); positions index the index meta (reference ids in order)."""
    n, k = neighbours.positions.shape
    flat = neighbours.positions.reshape(-1)
    ref_ids = meta["id"].to_numpy()[flat]
    return pd.DataFrame(
        {
            "query_id": np.repeat(rows["id"].to_numpy(), k),
            "kind": kind,
            "rank": np.tile(np.arange(k), n),
            "ref_id": ref_ids,
            "lat": meta["lat"].to_numpy(np.float64)[flat],
            "lon": meta["lon"].to_numpy(np.float64)[flat],
            "score": neighbours.scores.reshape(-1).astype(np.float64),
            "place": [places.get(str(i), "") for i in ref_ids],
        }
    )
