"""Batched, gradient-free retrieval embeddings: the one function the index and queries share."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from geoloc_core.models.alignment import GeoAlignmentModel
from geoloc_core.training.dataset import AlignmentData


@torch.no_grad()
def embed_retrieval(
    model: GeoAlignmentModel,
    data: AlignmentData,
    batch_size: int = 256,
    progress: bool = False,
    desc: str = "embed",
) -> np.ndarray:
    """float32 (N, D) unit vectors from model.retrieval_embedding, in the order of data.ids."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    chunks = []
    starts = range(0, len(data), batch_size)
    for start in tqdm(starts, desc=desc, disable=None if progress else True, unit="batch"):
        positions = np.arange(start, min(start + batch_size, len(data)))
        batch = data.batch(positions).to(device)
        chunks.append(model.retrieval_embedding(batch).float().cpu().numpy())
    model.train(was_training)
    if not chunks:
        raise ValueError("nothing to embed: no samples")
    return np.concatenate(chunks).astype(np.float32)
