"""Build image/text towers with open_clip's factory, for any architecture name and pretrained tag.

The demo profile uses small architectures shipped in ``model_configs/`` (registered with
open_clip at import) whose weights come from a file that the demo's own CLIP-style pretraining
wrote; the full profile names ``ViT-L-14`` with the ``openai`` tag. Both go through the same
``open_clip.create_model`` call, so the code that loads real weights is the code the tests run.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

MODEL_CONFIG_DIR = Path(__file__).parent / "model_configs"
# What open_clip imports only for a Hugging Face text tower (transformers), a timm image tower
# (timm) or weights named by a hub tag (huggingface_hub): together about half of its import
# time, paid by every `geoloc predict` of a model whose towers come from a weights file.
HUB_LIBRARIES = ("transformers", "timm", "huggingface_hub")
_imported: dict[str, frozenset[str]] = {}  # "hidden": the libraries open_clip was loaded without


def _libraries_needed(architecture: str, pretrained: str | None) -> frozenset[str]:
    """Which HUB_LIBRARIES building these towers needs, read from the architecture's JSON
    config without importing open_clip (an unknown architecture: all of them)."""
    spec = importlib.util.find_spec("open_clip")  # a top-level package: located, not imported
    folders = [MODEL_CONFIG_DIR]
    if spec is not None and spec.origin:
        folders.append(Path(spec.origin).parent / "model_configs")
    config = None
    for folder in folders:
        file = folder / f"{architecture}.json"
        if file.is_file():
            config = json.loads(file.read_text())
            break
    if config is None:
        return frozenset(HUB_LIBRARIES)
    needed = set()
    if config.get("text_cfg", {}).get("hf_model_name"):
        needed |= {"transformers", "huggingface_hub"}
    if config.get("vision_cfg", {}).get("timm_model_name"):
        needed.add("timm")
    if pretrained and not Path(pretrained).is_file():
        needed.add("huggingface_hub")  # a tag: open_clip may download it
    return frozenset(needed)


def _open_clip(spec: TowerSpec | None = None, lean: bool = False) -> ModuleType:
    """open_clip with the project's architecture configs registered, imported on first use
    (seconds). lean (a process that builds these towers only, e.g. `geoloc predict`): without
    the HUB_LIBRARIES they do not need, which open_clip treats as optional; towers needing one
    of those later in the same process get an error to build them in a process of their own."""
    if not _imported:
        hidden: list[str] = []
        if lean and spec is not None and "open_clip" not in sys.modules:
            needed = _libraries_needed(spec.architecture, spec.pretrained)
            hidden = [n for n in HUB_LIBRARIES if n not in needed and n not in sys.modules]
        for name in hidden:
            sys.modules[name] = None  # type: ignore[assignment]  # `import name` fails
        try:
            open_clip = importlib.import_module("open_clip")
        finally:
            for name in hidden:
                sys.modules.pop(name, None)
        open_clip.add_model_config(MODEL_CONFIG_DIR)
        _imported["hidden"] = frozenset(hidden)
    elif spec is not None and _imported["hidden"]:
        missing = _libraries_needed(spec.architecture, spec.pretrained) & _imported["hidden"]
        if missing:
            raise RuntimeError(
                f"open_clip was loaded in this process without {sorted(missing)}, which "
                f"'{spec.architecture}' ({spec.pretrained}) needs: build it in a new process"
            )
    return sys.modules["open_clip"]


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


def build_clip(
    spec: TowerSpec, device: str | torch.device = "cpu", lean: bool = False
) -> ClipTowers:
    """Create the open_clip model; weights come only from the pretrained tag or file given.
    lean: open_clip is imported without the libraries these towers do not need (_open_clip)."""
    if spec.architecture not in _open_clip(spec, lean).list_models():
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
