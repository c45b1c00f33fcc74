"""open_clip's VisionTransformer image tower rebuilt from plain torch modules, for processes that
only embed photos (`geoloc predict`, the served model).

Importing open_clip costs about two seconds of every cold `geoloc predict`: it imports
torchvision, whose ops import torch._dynamo, and embedding a photo uses neither. This tower
has open_clip's parameter names and runs the same torch modules in the same order, so a
weights file open_clip's model wrote loads strictly and the outputs equal open_clip's, bit for
bit on the same machine (tests/test_vit_tower.py). What it does not rebuild (attentional
pooling, custom attention blocks, timm or ResNet towers, other layer-norm or activation
options, checkpoints that are not a plain state dict) `plain_vision_tower` answers with the
reason, and the caller builds the towers with open_clip instead: the same numbers, slower.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geoloc_core.encoders.architectures import architecture_config

# open_clip's CLIPVisionCfg fields this tower reads, with open_clip's defaults.
DEFAULTS: dict[str, Any] = {
    "layers": 12,
    "width": 768,
    "head_width": 64,
    "mlp_ratio": 4.0,
    "patch_size": 16,
    "image_size": 224,
    "ls_init_value": None,
    "no_ln_pre": False,
    "pos_embed_type": "learnable",
    "final_ln_after_pool": False,
    "pool_type": "tok",
}
# Fields that change only training (dropped patches) or what open_clip returns, not the
# tower's outputs here: backbone_outputs asks for the tokens itself.
IGNORED = {"patch_dropout", "output_tokens"}
POS_EMBED_TYPES = ("learnable", "sin_cos_2d")  # either way a stored tensor, loaded from the file
POOL_TYPES = ("tok", "avg")
STATE_PREFIX = "visual."


class QuickGELU(nn.Module):
    """OpenAI CLIP's activation: x * sigmoid(1.702 x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class LayerScale(nn.Module):
    """A learnt per-channel scale (open_clip's ls_1 / ls_2 when ls_init_value is set)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    """Pre-norm residual attention block, open_clip's ResidualAttentionBlock (batch first)."""

    def __init__(self, width: int, heads: int, mlp_width: int, options: TowerOptions) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width, **options.norm_kwargs)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ls_1 = LayerScale(width) if options.layer_scale else nn.Identity()
        self.ln_2 = nn.LayerNorm(width, **options.norm_kwargs)
        self.mlp = nn.Sequential(
            OrderedDict(
                [
                    ("c_fc", nn.Linear(width, mlp_width)),
                    ("gelu", options.activation()),
                    ("c_proj", nn.Linear(mlp_width, width)),
                ]
            )
        )
        self.ls_2 = LayerScale(width) if options.layer_scale else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.ln_1(x)
        x = x + self.ls_1(self.attn(q, q, q, need_weights=False)[0])
        return x + self.ls_2(self.mlp(self.ln_2(x)))


class Blocks(nn.Module):
    """Holds the blocks under open_clip's names (transformer.resblocks.N)."""

    def __init__(self, blocks: list[Block]) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(blocks)


@dataclass(frozen=True)
class TowerOptions:
    image_size: int
    patch_size: int
    width: int
    layers: int
    heads: int
    mlp_width: int
    output_dim: int
    quick_gelu: bool
    layer_scale: bool
    ln_pre: bool
    pool_type: str
    final_ln_after_pool: bool
    norm_kwargs: dict[str, Any]
    act_kwargs: dict[str, Any]

    def activation(self) -> nn.Module:
        if self.quick_gelu:
            return QuickGELU()
        return nn.GELU(**self.act_kwargs)


class PlainVisionTower(nn.Module):
    """The image tower's forward as open_clip computes it in fp32 and eval mode; returns
    (pooled embedding, patch tokens) when output_tokens is set, as open_clip's does."""

    def __init__(self, options: TowerOptions) -> None:
        super().__init__()
        self.options = options
        self.output_tokens = False
        self.image_size = (options.image_size, options.image_size)
        self.output_dim = options.output_dim
        width = options.width
        grid = options.image_size // options.patch_size
        self.conv1 = nn.Conv2d(3, width, options.patch_size, options.patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(width))
        self.positional_embedding = nn.Parameter(torch.zeros(grid * grid + 1, width))
        self.ln_pre = (
            nn.LayerNorm(width, **options.norm_kwargs) if options.ln_pre else nn.Identity()
        )
        self.transformer = Blocks(
            [Block(width, options.heads, options.mlp_width, options) for _ in range(options.layers)]
        )
        self.ln_post = nn.LayerNorm(width, **options.norm_kwargs)
        self.proj = nn.Parameter(torch.zeros(width, options.output_dim))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x = self.conv1(pixels)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = self.class_embedding.view(1, 1, -1).expand(x.shape[0], -1, -1).to(x.dtype)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)
        for block in self.transformer.resblocks:
            x = block(x)
        if self.options.final_ln_after_pool:
            pooled, tokens = self._global_pool(x)
            pooled = self.ln_post(pooled)
        else:
            pooled, tokens = self._global_pool(self.ln_post(x))
        pooled = pooled @ self.proj
        if self.output_tokens:
            return pooled, tokens
        return pooled

    def _global_pool(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.options.pool_type == "avg":
            return x[:, 1:].mean(dim=1), x[:, 1:]
        return x[:, 0], x[:, 1:]


class VisionOnly(nn.Module):
    """What ClipTowers.model offers to the photo-embedding path: the image tower alone."""

    def __init__(self, visual: PlainVisionTower) -> None:
        super().__init__()
        self.visual = visual


def tower_options(config: Mapping[str, Any]) -> TowerOptions | str:
    """The tower's shape from an architecture's JSON config, or why it is not rebuilt here."""
    vision = dict(config.get("vision_cfg", {}))
    unknown = sorted(
        key
        for key, value in vision.items()
        if key not in DEFAULTS
        and key not in IGNORED
        and key not in ("act_kwargs", "norm_kwargs")
        and value not in (None, False, 0, 0.0, "", "default")
    )
    if unknown:
        return f"vision_cfg sets {', '.join(unknown)}"
    if vision.get("block_type") not in (None, "default"):
        return f"vision_cfg block_type {vision['block_type']!r}"
    cfg = {**DEFAULTS, **{k: v for k, v in vision.items() if k in DEFAULTS}}
    for key in ("layers", "image_size", "patch_size"):
        if not isinstance(cfg[key], int):
            return f"vision_cfg {key}={cfg[key]!r} (an int is rebuilt here)"
    if cfg["pos_embed_type"] not in POS_EMBED_TYPES or cfg["pool_type"] not in POOL_TYPES:
        return f"pos_embed_type {cfg['pos_embed_type']!r} / pool_type {cfg['pool_type']!r}"
    quick_gelu = bool(config.get("quick_gelu", False))
    act_kwargs = dict(vision.get("act_kwargs") or {})
    if quick_gelu and act_kwargs:
        return "act_kwargs with QuickGELU"
    return TowerOptions(
        image_size=cfg["image_size"],
        patch_size=cfg["patch_size"],
        width=cfg["width"],
        layers=cfg["layers"],
        heads=cfg["width"] // cfg["head_width"],
        mlp_width=int(cfg["width"] * cfg["mlp_ratio"]),
        output_dim=int(config["embed_dim"]),
        quick_gelu=quick_gelu,
        layer_scale=cfg["ls_init_value"] is not None,
        ln_pre=not cfg["no_ln_pre"],
        pool_type=cfg["pool_type"],
        final_ln_after_pool=bool(cfg["final_ln_after_pool"]),
        norm_kwargs=dict(vision.get("norm_kwargs") or {}),
        act_kwargs=act_kwargs,
    )


def visual_state(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The image tower's tensors of a CLIP state dict (as open_clip's model.state_dict() or a
    {"state_dict": ...} training checkpoint, DataParallel's "module." prefix allowed)."""
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, Mapping):
        return {}
    found = {}
    for key, value in state.items():
        name = key[len("module.") :] if key.startswith("module.") else key
        if name.startswith(STATE_PREFIX) and isinstance(value, torch.Tensor):
            found[name[len(STATE_PREFIX) :]] = value
    return found


def plain_vision_tower(
    architecture: str, weights: Path, config: Mapping[str, Any] | None = None
) -> PlainVisionTower | str:
    """The frozen tower of a weights file, or why it must be built with open_clip. config:
    the architecture's JSON config (default: read from the project's or open_clip's folder)."""
    config = architecture_config(architecture) if config is None else config
    if config is None:
        return f"no JSON config for architecture {architecture!r}"
    options = tower_options(config)
    if isinstance(options, str):
        return options
    try:
        checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as error:  # TorchScript archives and other formats
        return f"{weights.name} is not a plain state dict ({type(error).__name__})"
    if not isinstance(checkpoint, Mapping):
        return f"{weights.name} is not a plain state dict"
    tower = PlainVisionTower(options)
    state = visual_state(checkpoint)
    expected = tower.state_dict()
    if set(state) != set(expected):
        return f"{weights.name}'s image tower has other parameters than {architecture!r} builds"
    mismatched = [k for k in expected if tuple(state[k].shape) != tuple(expected[k].shape)]
    if mismatched:
        return f"{weights.name}: {mismatched[0]} has another shape than {architecture!r} builds"
    tower.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    tower.requires_grad_(False)
    return tower.eval()
