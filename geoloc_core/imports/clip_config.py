"""The transformers CLIPConfig an imported checkpoint is read with.

G3 and GeoCLIP both build openai/clip-vit-large-patch14. Its configuration is written here
(the values of the hub's config.json), so an import needs no network; a different architecture
(the tests' tiny CLIPs) comes as a CLIPConfig JSON file.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import torch

VIT_L14_NAME = "openai/clip-vit-large-patch14"
VIT_L14 = {
    "projection_dim": 768,
    "logit_scale_init_value": 2.6592,
    "text_config": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_attention_heads": 12,
        "num_hidden_layers": 12,
        "max_position_embeddings": 77,
        "vocab_size": 49408,
        "projection_dim": 768,
        "hidden_act": "quick_gelu",
        "bos_token_id": 0,
        "eos_token_id": 2,
        "pad_token_id": 1,
    },
    "vision_config": {
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_attention_heads": 16,
        "num_hidden_layers": 24,
        "image_size": 224,
        "patch_size": 14,
        "projection_dim": 768,
        "hidden_act": "quick_gelu",
    },
}


def clip_config(path: Path | None):
    """CLIPConfig from a JSON file (transformers' format), or ViT-L/14's when path is None."""
    from transformers import CLIPConfig

    if path is None:
        return CLIPConfig(**VIT_L14)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--clip-config {path} does not exist")
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"--clip-config {path} is not JSON: {exc}") from None
    if not isinstance(values, dict) or "vision_config" not in values:
        raise ValueError(
            f"--clip-config {path} is not a transformers CLIPConfig (no vision_config); give "
            "the config.json of a CLIPModel"
        )
    return CLIPConfig(**values)


def clip_shapes(config) -> dict[str, tuple[int, ...]]:
    """The persistent tensors of a CLIPModel of this config, by name, built without memory."""
    return dict(_shapes_of(config.to_json_string()))


@functools.lru_cache(maxsize=4)
def _shapes_of(config_json: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Building even a meta ViT-L takes seconds: once per configuration and process."""
    from transformers import CLIPConfig, CLIPModel

    with torch.device("meta"):
        model = CLIPModel(CLIPConfig(**json.loads(config_json)))
    return tuple((name, tuple(value.shape)) for name, value in model.state_dict().items())
