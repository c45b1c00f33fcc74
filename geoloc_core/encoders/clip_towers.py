"""Build image/text towers with open_clip's factory, for any architecture name and pretrained tag,
or from a transformers CLIP checkpoint (hf_clip.py) behind the same ClipTowers interface.

The demo profile uses small architectures shipped in ``model_configs/`` (registered with
open_clip at import) whose weights come from a file that the demo's own CLIP-style pretraining
wrote; the full profile names ``ViT-L-14-quickgelu`` with the ``openai`` tag (OpenAI's weights
use QuickGELU). Both go through the same ``open_clip.create_model`` call, so the code that loads
real weights is the code the tests run. Every tower carries its image transform
(data/clip_preprocess.py), read from the weights' own preprocessing configuration.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from geoloc_core.data.clip_preprocess import ImageTransform, open_clip_transform
from geoloc_core.encoders.architectures import (
    MODEL_CONFIG_DIR,
    architecture_config,
    quick_gelu_refusal,
)
from geoloc_core.encoders.settings import IMPLEMENTATIONS

# What open_clip imports only for a Hugging Face text tower (transformers), a timm image tower
# (timm) or weights named by a hub tag (huggingface_hub): together about half of its import
# time, paid by every `geoloc predict` of a model whose towers come from a weights file.
HUB_LIBRARIES = ("transformers", "timm", "huggingface_hub")
_imported: dict[str, frozenset[str]] = {}  # "hidden": the libraries open_clip was loaded without
# The project's stand-in architectures, whose transform standardises each image by its own
# statistics (data/clip_preprocess.py, per_image). Real CLIP weights keep CLIP's preprocessing.
PER_IMAGE_ARCHITECTURES = frozenset({"geoloc-demo-vit-tiny"})


def _libraries_needed(architecture: str, pretrained: str | None) -> frozenset[str]:
    """Which HUB_LIBRARIES building these towers needs, read from the architecture's JSON
    config without importing open_clip (an unknown architecture: all of them)."""
    config = architecture_config(architecture)
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
    """An architecture and where its weights come from.

    implementation open_clip: pretrained is an open_clip pretrained tag (e.g. ``openai``), an
    absolute path to a weights file, or None for random weights (tests of the full-profile
    architecture use that). implementation transformers: pretrained is a transformers CLIP
    checkpoint (a hub id, or a directory with config.json and model.safetensors) and
    architecture only names it in records.
    """

    architecture: str
    pretrained: str | None = None
    implementation: str = "open_clip"


@dataclass
class ClipTowers:
    model: nn.Module  # .visual (backbone_outputs), .encode_image, .encode_text, .logit_scale
    tokenizer: Callable[[list[str]], torch.Tensor]
    embed_dim: int  # the joint image-text space
    transform: ImageTransform  # a photo -> the image tower's input (CLIP's preprocessing)
    implementation: str = "open_clip"

    @property
    def image_size(self) -> int:
        return self.transform.size

    @property
    def mean(self) -> tuple[float, float, float]:
        return self.transform.mean

    @property
    def std(self) -> tuple[float, float, float]:
        return self.transform.std


def architecture_image_size(architecture: str) -> int:
    """Input side of an architecture's image tower, read from its config (no model built)."""
    config = _open_clip().get_model_config(architecture)
    if config is None:
        raise ValueError(f"unknown open_clip architecture '{architecture}'")
    size = config["vision_cfg"]["image_size"]
    return int(size[0] if isinstance(size, tuple | list) else size)


def tower_image_size(spec: TowerSpec) -> int:
    """Input side of spec's image tower, read from its config (no model built)."""
    if spec.implementation == "transformers":
        from geoloc_core.encoders.hf_clip import checkpoint_config

        return int(checkpoint_config(str(spec.pretrained))["vision_config"]["image_size"])
    return architecture_image_size(spec.architecture)


def is_tag(pretrained: str | None) -> bool:
    """An open_clip pretrained tag (not a weights file, not None)."""
    return bool(pretrained) and not Path(str(pretrained)).is_file()


def tag_needs_quick_gelu(architecture: str, pretrained: str | None) -> bool:
    """Whether open_clip's pretrained config of this tag says its weights use QuickGELU."""
    if not is_tag(pretrained):
        return False
    config = _open_clip().get_pretrained_cfg(architecture, str(pretrained)) or {}
    return bool(config.get("quick_gelu", False))


def check_activation(spec: TowerSpec) -> None:
    """Refuse open_clip weights whose activation the architecture would not build (OpenAI's
    weights with ``ViT-L-14``: QuickGELU against nn.GELU), naming the fix."""
    if spec.implementation != "open_clip":
        return
    problem = quick_gelu_refusal(
        spec.architecture, tag_needs_quick_gelu(spec.architecture, spec.pretrained)
    )
    if problem:
        raise ValueError(
            f"backbone.architecture={spec.architecture!r} with backbone.pretrained="
            f"{spec.pretrained!r}: {problem}"
        )


def activation_names(model: nn.Module) -> set[str]:
    """The activations in the towers' MLPs: "quick_gelu" (x * sigmoid(1.702 x), OpenAI's CLIP)
    or "gelu", whichever library built them."""
    names = set()
    for module in model.modules():
        kind = type(module).__name__
        if kind in ("QuickGELU", "QuickGELUActivation"):
            names.add("quick_gelu")
        elif kind in ("GELU", "GELUActivation"):
            names.add("gelu")
    return names


def build_towers(
    spec: TowerSpec, device: str | torch.device = "cpu", lean: bool = False
) -> ClipTowers:
    """The towers of spec, from open_clip or transformers (spec.implementation)."""
    if spec.implementation == "transformers":
        from geoloc_core.encoders.hf_clip import build_hf_clip

        return build_hf_clip(str(spec.pretrained), device)
    if spec.implementation != "open_clip":
        raise ValueError(
            f"backbone implementation {spec.implementation!r}: choose one of {IMPLEMENTATIONS}"
        )
    return build_clip(spec, device, lean)


def build_clip(
    spec: TowerSpec,
    device: str | torch.device = "cpu",
    lean: bool = False,
    random_weights: bool = False,
) -> ClipTowers:
    """Create the open_clip model; weights come only from the pretrained tag or file given.
    QuickGELU whenever the tag's weights were trained with it (open_clip's pretrained config
    says so), even where the architecture's config lacks it. lean: open_clip is imported
    without the libraries these towers do not need (_open_clip). random_weights: the model the
    tag would give (architecture, activation, preprocessing) with random weights, for tests and
    benchmarks where weights cannot be downloaded."""
    if spec.architecture not in _open_clip(spec, lean).list_models():
        raise ValueError(
            f"unknown open_clip architecture '{spec.architecture}'; choose one of "
            f"open_clip.list_models() or add a JSON config to {MODEL_CONFIG_DIR}"
        )
    pretrained = spec.pretrained or None
    model = _open_clip().create_model(
        spec.architecture,
        pretrained=None if random_weights else pretrained,
        device=device,
        pretrained_text=False,
        force_quick_gelu=tag_needs_quick_gelu(spec.architecture, pretrained),
    )
    visual = model.visual
    size = visual.image_size
    image_size = int(size[0] if isinstance(size, tuple | list) else size)
    preprocess = dict(getattr(visual, "preprocess_cfg", {}) or {})
    if random_weights and is_tag(pretrained):
        preprocess.update(_open_clip().get_pretrained_cfg(spec.architecture, str(pretrained)))
    transform = architecture_transform(spec.architecture, preprocess, image_size)
    tokenizer = _open_clip().get_tokenizer(spec.architecture)
    return ClipTowers(model, tokenizer, int(visual.output_dim), transform)


def architecture_transform(
    architecture: str, preprocess_cfg: Mapping[str, Any], image_size: int
) -> ImageTransform:
    """The transform an open_clip architecture's tower reads its images through, wherever the
    tower is built (open_clip's model, or the photo path's rebuilt tower): its preprocess config
    at its input size, with the per-image step for the project's stand-in architectures."""
    return open_clip_transform(preprocess_cfg, image_size, architecture in PER_IMAGE_ARCHITECTURES)


def clip_tokenizer(context_length: int) -> Callable[[list[str]], torch.Tensor]:
    """OpenAI's CLIP tokenizer (open_clip's), texts -> (N, context_length) token ids."""
    return _open_clip().tokenizer.SimpleTokenizer(context_length=context_length)


def freeze(towers: ClipTowers) -> ClipTowers:
    """Frozen towers: no gradients and eval mode, as both papers use CLIP."""
    towers.model.requires_grad_(False)
    towers.model.eval()
    return towers
