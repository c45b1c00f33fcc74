"""Build image/text towers with open_clip's factory, for any architecture name and pretrained tag.

The demo profile uses small architectures shipped in ``model_configs/`` (registered with
open_clip at import) and trains them from scratch; the full profile names e.g. ``ViT-L-14`` with
the ``openai`` tag. Both go through ``open_clip.create_model_and_transforms``, so the code that
loads real weights is the code the tests run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch
from torch import nn

MODEL_CONFIG_DIR = Path(__file__).parent / "model_configs"
open_clip.add_model_config(MODEL_CONFIG_DIR)


@dataclass(frozen=True)
class TowerSpec:
    architecture: str
    pretrained: str | None = None


@dataclass
class ClipTowers:
    model: nn.Module
    preprocess: object
    image_size: int
    embed_dim: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def known_architectures() -> list[str]:
    return open_clip.list_models()


def build_clip(spec: TowerSpec, device: str | torch.device = "cpu") -> ClipTowers:
    """Create the open_clip model; weights come only from the pretrained tag or file given."""
    if spec.architecture not in open_clip.list_models():
        raise ValueError(
            f"unknown open_clip architecture '{spec.architecture}'; choose one of "
            f"open_clip.list_models() or add a JSON config to {MODEL_CONFIG_DIR}"
        )
    model, _, preprocess = open_clip.create_model_and_transforms(
        spec.architecture,
        pretrained=spec.pretrained or None,
        device=device,
        pretrained_text=False,
    )
    visual = model.visual
    size = visual.image_size
    image_size = int(size[0] if isinstance(size, tuple | list) else size)
    cfg = getattr(visual, "preprocess_cfg", {}) or {}
    mean = tuple(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN))
    std = tuple(cfg.get("std", open_clip.OPENAI_DATASET_STD))
    embed_dim = int(model.text_projection.shape[1]) if hasattr(model, "text_projection") else 0
    if not embed_dim:
        embed_dim = int(visual.output_dim)
    return ClipTowers(model, preprocess, image_size, embed_dim, mean, std)
