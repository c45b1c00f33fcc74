"""Where each benchmark's candidates and query embeddings live, and how they are read back:
the steps after retrieval need these without loading the retrieval stack (FAISS, torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from geoloc_core.paths import ProjectPaths

CANDIDATE_COLUMNS = ("query_id", "kind", "rank", "ref_id", "lat", "lon", "score", "place")
TEXT_CANDIDATE_COLUMNS = ("query_id", "kind", "ref_id", "place")


def candidates_file(paths: ProjectPaths, benchmark: str) -> Path:
    return paths.artifacts / "candidates" / f"{benchmark}.csv"


def query_embeddings_files(paths: ProjectPaths, benchmark: str) -> tuple[Path, Path]:
    """(GPS-aligned query embeddings .npy, their ids .csv in the same order)."""
    folder = paths.artifacts / "candidates"
    return folder / f"{benchmark}.queries.npy", folder / f"{benchmark}.queries.csv"


def read_table(path: Path, text_columns: tuple[str, ...]) -> pd.DataFrame:
    """A CSV with its id and name columns kept as text ("" stays "", "007" stays "007")."""
    return pd.read_csv(path, dtype={c: str for c in text_columns}, keep_default_na=False)


def read_candidates(paths: ProjectPaths, benchmark: str) -> pd.DataFrame:
    source = candidates_file(paths, benchmark)
    if not source.is_file():
        raise FileNotFoundError(f"{source} is missing: materialize candidates[{benchmark}] first")
    return read_table(source, TEXT_CANDIDATE_COLUMNS)


def read_query_embeddings(paths: ProjectPaths, benchmark: str) -> tuple[list[str], np.ndarray]:
    vectors_file, ids_file = query_embeddings_files(paths, benchmark)
    if not vectors_file.is_file():
        raise FileNotFoundError(
            f"{vectors_file} is missing: materialize candidates[{benchmark}] first"
        )
    return read_table(ids_file, ("id",))["id"].tolist(), np.load(vectors_file)
