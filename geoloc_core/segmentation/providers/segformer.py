"""The `segformer` provider (transformers SegformerForSemanticSegmentation, ADE20K-150).

Its logits come at a quarter of the input resolution; their argmax is the full-resolution map.
"""

from __future__ import annotations

from typing import Any

import torch

from geoloc_core.segmentation.providers.hf import TransformersProvider, load_checkpoint


def segformer_scores(outputs: Any) -> torch.Tensor:
    return outputs.logits


def load_segformer(
    model_id: str, input_resolution: int, device: torch.device, dtype: torch.dtype
) -> TransformersProvider:
    from transformers import SegformerForSemanticSegmentation

    model, mean, std = load_checkpoint(model_id, SegformerForSemanticSegmentation, "segformer")
    return TransformersProvider(
        "segformer", model, segformer_scores, mean, std, input_resolution, device, dtype, model_id
    )
