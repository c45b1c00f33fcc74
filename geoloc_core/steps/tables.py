"""Reading back the tables one step hands the next (candidates, query embeddings, re-ranked
candidates, LMM answers), at the catalogue's paths; without the retrieval stack (FAISS, torch),
so the steps after retrieval do not load it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geoloc_core.paths import ProjectPaths

# the columns read as text (ids and names: "" stays "", "007" stays "007")
CANDIDATE_TEXT_COLUMNS = ("query_id", "kind", "ref_id", "place")
RERANK_TEXT_COLUMNS = ("query_id", "ref_id", "place")
ANSWER_TEXT_COLUMNS = ("query_id", "source")


def _read_table(path: Path, text_columns: tuple[str, ...]) -> pd.DataFrame:
    """A CSV with its id and name columns kept as text ("" stays "", "007" stays "007")."""
    return pd.read_csv(path, dtype={c: str for c in text_columns}, keep_default_na=False)


def read_candidates(paths: ProjectPaths, benchmark: str) -> pd.DataFrame:
    source = paths.candidates(benchmark)
    if not source.is_file():
        raise FileNotFoundError(f"{source} is missing: materialize candidates[{benchmark}] first")
    return _read_table(source, CANDIDATE_TEXT_COLUMNS)


def read_query_embeddings(paths: ProjectPaths, benchmark: str) -> tuple[list[str], np.ndarray]:
    vectors_file, ids_file = paths.query_embeddings(benchmark)
    if not vectors_file.is_file():
        raise FileNotFoundError(
            f"{vectors_file} is missing: materialize candidates[{benchmark}] first"
        )
    return _read_table(ids_file, ("id",))["id"].tolist(), np.load(vectors_file)


def read_reranked(paths: ProjectPaths, benchmark: str) -> pd.DataFrame:
    source = paths.reranked(benchmark)
    if not source.is_file():
        raise FileNotFoundError(f"{source} is missing: materialize rerank[{benchmark}] first")
    return _read_table(source, RERANK_TEXT_COLUMNS)


def read_lmm_summary(paths: ProjectPaths, benchmark: str, mode: str) -> dict[str, Any] | None:
    """The summary of that mode's last run, or None when it never ran."""
    path = paths.lmm_summary(benchmark, mode)
    return json.loads(path.read_text()) if path.is_file() else None


def active_answers(paths: ProjectPaths, benchmark: str, mode: str) -> pd.DataFrame | None:
    """That mode's LMM answers, or None when its step was skipped (provider none, other
    mode) or never ran."""
    summary = read_lmm_summary(paths, benchmark, mode)
    if summary is None or summary.get("skipped"):
        return None
    return _read_table(paths.lmm_answers(benchmark, mode), ANSWER_TEXT_COLUMNS)
