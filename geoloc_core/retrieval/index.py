"""FAISS inner-product index over unit vectors (cosine similarity)."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np


def build_flat_index(embeddings: np.ndarray) -> faiss.Index:
    vectors = _as_unit_float32(embeddings)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, positions), both (n_queries, k); k is capped by the index size, never padded."""
    if index.ntotal == 0:
        raise ValueError("the retrieval index is empty; build it from a non-empty reference set")
    k = min(k, index.ntotal)
    return index.search(_as_unit_float32(queries), k)


def save_index(index: faiss.Index, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    faiss.write_index(index, str(tmp))
    tmp.replace(path)


def load_index(path: Path) -> faiss.Index:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: materialize the retrieval_index asset first")
    return faiss.read_index(str(path))


def _as_unit_float32(x: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(x, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n, d), got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(f"{int((norms == 0).sum())} embeddings are all zeros; cannot normalise")
    return vectors / norms
