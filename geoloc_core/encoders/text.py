"""Frozen text tower: captions -> unit vectors in the tower's joint space (G3's text side)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from geoloc_core.encoders.clip_towers import ClipTowers


@torch.no_grad()
def embed_texts(towers: ClipTowers, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
    """float32 (N, D) unit vectors, one per text, in order."""
    model = towers.model
    was_training = model.training
    model.eval()
    chunks = []
    device = next(model.parameters()).device
    for start in range(0, len(texts), batch_size):
        tokens = towers.tokenizer(list(texts[start : start + batch_size])).to(device)
        chunks.append(F.normalize(model.encode_text(tokens).float(), dim=-1).cpu().numpy())
    model.train(was_training)
    if not chunks:
        return np.zeros((0, towers.embed_dim), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32)
