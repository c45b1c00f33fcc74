"""Batched, gradient-free embedding of image arrays."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from geoloc_core.data.images import normalize_pixels


@torch.no_grad()
def embed_images(
    model: torch.nn.Module,
    images: np.ndarray,
    batch_size: int = 256,
    progress: bool = False,
    desc: str = "embed",
) -> np.ndarray:
    """uint8 (N, H, W, 3) -> float32 (N, D) unit vectors from model.encode_image."""
    was_training = model.training
    model.eval()
    chunks = []
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc=desc, disable=None if progress else True, unit="batch"):
        pixels = normalize_pixels(images[start : start + batch_size], model.mean, model.std)
        chunks.append(model.encode_image(pixels).float().cpu().numpy())
    model.train(was_training)
    if not chunks:
        return np.zeros((0, model.config.embed_dim), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32)
