"""Build image/text towers with open_clip's factory, for any architecture name and pretrained tag.

The demo profile uses small architectures shipped in ``model_configs/`` (registered with
open_clip at import) whose weights come from a file that the demo's own CLIP-style pretraining
wrote; the full profile names ``ViT-L-14`` with the ``openai`` tag. Both go through the same
``open_clip.create_model`` call, so the code that loads real weights is the code the tests run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

MODEL_CONFIG_DIR = Path(__file__).parent / "model_configs"


@lru_cache(maxsize=1)
def _open_clip() -> ModuleType:
    """open_clip with the project's architecture configs registered, imported on first use:
    importing it costs seconds (it pulls transformers), which every asset process paid before."""
    import open_clip

    open_clip.add_model_config(MODEL_CONFIG_DIR)
    return open_clip


@dataclass(frozen=True)
class TowerSpec:
    """An open_clip architecture and where its weights come from.

    pretrained: an open_clip pretrained tag (e.g. ``openai``), an absolute path to a weights
    file, or None for random weights (tests of the full-profile architecture use that).
    """

    architecture: str
    pretrained: str | None = None


@dataclass
class ClipTowers:
    model: nn.Module  # the open_clip CLIP model: .visual, .encode_image, .encode_text
    tokenizer: Callable[[list[str]], torch.Tensor]
    image_size: int
    embed_dim: int  # the joint image-text space
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def architecture_image_size(architecture: str) -> int:
    """Input side of an architecture's image tower, read from its config (no model built)."""
    config = _open_clip().get_model_config(architecture)
    if config is None:
        raise ValueError(f"unknown open_clip architecture '{architecture}'")
    size = config["vision_cfg"]["image_size"]
    return int(size[0] if isinstance(size, tuple | list) else size)


def build_clip(spec: TowerSpec, device: str | torch.device = "cpu") -> ClipTowers:
    """Create the open_clip model; weights come only from the pretrained tag or file given."""
    if spec.architecture not in _open_clip().list_models():
        raise ValueError(
            f"unknown open_clip architecture '{spec.architecture}'; choose one of "
            f"open_clip.list_models() or add a JSON config to {MODEL_CONFIG_DIR}"
        )
    pretrained = spec.pretrained or None
    model = _open_clip().create_model(
        spec.architecture, pretrained=pretrained, device=device, pretrained_text=False
    )
    visual = model.visual
    size = visual.image_size
    image_size = int(size[0] if isinstance(size, tuple | list) else size)
    cfg = getattr(visual, "preprocess_cfg", {}) or {}
    mean = tuple(cfg.get("mean", _open_clip().OPENAI_DATASET_MEAN))
    std = tuple(cfg.get("std", _open_clip().OPENAI_DATASET_STD))
    embed_dim = int(visual.output_dim)
    tokenizer = _open_clip().get_tokenizer(spec.architecture)
    return ClipTowers(model, tokenizer, image_size, embed_dim, mean, std)


def freeze(towers: ClipTowers) -> ClipTowers:
    """Frozen towers: no gradients and eval mode, as both papers use CLIP."""
    towers.model.requires_grad_(False)
    towers.model.eval()
    return towers
