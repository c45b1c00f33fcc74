"""Batched, gradient-free embeddings: the functions the index and the queries share."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from geoloc_core.models.alignment import GeoAlignmentModel
from geoloc_core.training.dataset import AlignmentData


def embed_retrieval(model: GeoAlignmentModel, data: AlignmentData, **options: Any) -> np.ndarray:
    """float32 (N, D) unit vectors from model.retrieval_embedding, in the order of data.ids:
    embed_queries (same options) without the GPS-aligned pass."""
    retrieval, _ = embed_queries(model, data, gps=False, **options)
    return retrieval


@torch.no_grad()
def embed_queries(
    model: GeoAlignmentModel,
    data: AlignmentData,
    batch_size: int = 256,
    progress: bool = False,
    desc: str = "embed",
    parts: tuple[str, ...] | None = None,
    gps: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(retrieval vectors, GPS-aligned vectors or None): one pass over the inputs for both,
    as candidates need the first for search and geo-verification the second."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    retrieval_chunks, gps_chunks = [], []
    starts = range(0, len(data), batch_size)
    for start in tqdm(starts, desc=desc, disable=None if progress else True, unit="batch"):
        positions = np.arange(start, min(start + batch_size, len(data)))
        batch = data.batch(positions).to(device)
        retrieval_chunks.append(model.retrieval_embedding(batch, parts).float().cpu().numpy())
        if gps:
            gps_chunks.append(model.gps_aligned_embedding(batch).float().cpu().numpy())
    model.train(was_training)
    if not retrieval_chunks:
        raise ValueError("nothing to embed: no samples")
    aligned = np.concatenate(gps_chunks).astype(np.float32) if gps else None
    return np.concatenate(retrieval_chunks).astype(np.float32), aligned
