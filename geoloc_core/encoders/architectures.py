"""open_clip architecture configs read as JSON, without importing open_clip or torch.

Settings are checked when params load, in every `geoloc` command: reading a config file here
costs microseconds where importing open_clip costs seconds. Also the activation rule: OpenAI's
CLIP weights were trained with QuickGELU, and open_clip builds an architecture without
`quick_gelu: true` in its config (e.g. `ViT-L-14`) with nn.GELU, only warning. Such a model
computes other embeddings than CLIP's, so that combination is refused with the fix
(`ViT-L-14-quickgelu`, the same architecture with QuickGELU).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

MODEL_CONFIG_DIR = Path(__file__).parent / "model_configs"
# The open_clip tag of OpenAI's released CLIP weights: every one of them uses QuickGELU.
OPENAI_TAG = "openai"
QUICK_GELU_SUFFIX = "-quickgelu"


def config_folders() -> list[Path]:
    """The project's model_configs, then open_clip's own (located, not imported)."""
    folders = [MODEL_CONFIG_DIR]
    spec = importlib.util.find_spec("open_clip")
    if spec is not None and spec.origin:
        folders.append(Path(spec.origin).parent / "model_configs")
    return folders


def architecture_config(architecture: str) -> dict[str, Any] | None:
    """The architecture's JSON config, None when neither folder has it."""
    for folder in config_folders():
        file = folder / f"{architecture}.json"
        if file.is_file():
            return json.loads(file.read_text())
    return None


def quick_gelu_refusal(architecture: str, weights_need_quick_gelu: bool) -> str | None:
    """Why these weights cannot go with this architecture (their activation differs), or None.
    An unknown architecture is left to the factory, which refuses it by name."""
    config = architecture_config(architecture)
    if config is None or not weights_need_quick_gelu or config.get("quick_gelu", False):
        return None
    fix = architecture + QUICK_GELU_SUFFIX
    hint = (
        f"use '{fix}', the same architecture with QuickGELU"
        if architecture_config(fix) is not None
        else "use an architecture whose config sets quick_gelu: true"
    )
    return (
        f"these weights were trained with QuickGELU and '{architecture}' builds nn.GELU "
        f"(its config has no quick_gelu), so every embedding would differ from the weights' "
        f"own; {hint}"
    )
