"""The `mask2former` provider (transformers Mask2FormerForUniversalSegmentation, ADE20K-150).

Semantic scores as transformers' own post-processing computes them — per-query class
probabilities (without the "no object" class) times per-query mask probabilities — but batched
and kept at the masks' resolution (a quarter of the input) instead of resized per image.
"""

from __future__ import annotations

from typing import Any

import torch

from geoloc_core.segmentation.providers.hf import TransformersProvider, load_checkpoint


def mask2former_scores(outputs: Any) -> torch.Tensor:
    classes = outputs.class_queries_logits.float().softmax(dim=-1)[..., :-1]
    masks = outputs.masks_queries_logits.float().sigmoid()
    return torch.einsum("bqc,bqhw->bchw", classes, masks)


def load_mask2former(
    model_id: str, input_resolution: int, device: torch.device, dtype: torch.dtype
) -> TransformersProvider:
    from transformers import Mask2FormerForUniversalSegmentation

    model, mean, std = load_checkpoint(model_id, Mask2FormerForUniversalSegmentation, "mask2former")
    return TransformersProvider(
        "mask2former",
        model,
        mask2former_scores,
        mean,
        std,
        input_resolution,
        device,
        dtype,
        model_id,
    )
