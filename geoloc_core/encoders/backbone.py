"""What a frozen image tower contributes per image: its pooled embedding and a coarse grid of
patch tokens (for DualGeo's cross-attention), computed once and cached (fp16 or fp32,
params features.precision).

Patch tokens are average-pooled to a token_grid x token_grid grid and projected with the
tower's own output projection, so they live in the same space as the pooled embedding
(768-d for ViT-L-14) and a 4.7M-image cache stays affordable (16 tokens per image at grid 4).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class BackboneOutputs:
    pooled: torch.Tensor  # (B, D) the tower's image embedding
    tokens: torch.Tensor  # (B, token_grid**2, D) pooled patch tokens, row-major


@dataclass(frozen=True)
class FeatureSpec:
    """Everything that decides the cached features of an image (and so the model's inputs)."""

    architecture: str
    pretrained: str | None  # open_clip tag, or a weights file relative to the project root
    token_grid: int
    weights_sha256: str  # of the weights file; the tag itself for a tag
    # Added after the first cache format; written only when they differ from what that format
    # computed (open_clip towers, fp16), so its records and fingerprints stay as they were.
    implementation: str = "open_clip"  # or transformers (pretrained: hub id or directory)
    precision: str = "fp16"  # how the outputs are stored: fp16 | fp32

    def to_record(self) -> dict[str, Any]:
        """The spec as stored in caches and model configs (read back with FeatureSpec(**d))."""
        record = asdict(self)
        for field in fields(self):
            if field.name in _LATER_FIELDS and record[field.name] == field.default:
                del record[field.name]
        return record


_LATER_FIELDS = ("implementation", "precision")


@contextmanager
def _returning_tokens(visual: nn.Module) -> Iterator[None]:
    if not hasattr(visual, "output_tokens"):
        raise TypeError(
            f"{type(visual).__name__} cannot return patch tokens; use an open_clip "
            "VisionTransformer architecture (e.g. ViT-L-14 or geoloc-demo-vit-tiny)"
        )
    before = visual.output_tokens
    visual.output_tokens = True
    try:
        yield
    finally:
        visual.output_tokens = before


@torch.no_grad()
def backbone_outputs(visual: nn.Module, pixels: torch.Tensor, token_grid: int) -> BackboneOutputs:
    """(B, 3, H, W) normalised pixels -> pooled embedding and pooled patch-token grid."""
    with _returning_tokens(visual):
        pooled, tokens = visual(pixels)
    batch, count, width = tokens.shape
    side = math.isqrt(count)
    if side * side != count:
        raise ValueError(f"{count} patch tokens do not form a square grid")
    if not 1 <= token_grid <= side:
        raise ValueError(
            f"features.token_grid={token_grid} must lie between 1 and the tower's {side}x{side} "
            "patch grid"
        )
    grid = tokens.transpose(1, 2).reshape(batch, width, side, side)
    pooled_grid = F.adaptive_avg_pool2d(grid, token_grid).flatten(2).transpose(1, 2)
    projection = getattr(visual, "proj", None)
    if projection is not None:
        pooled_grid = pooled_grid @ projection
    return BackboneOutputs(pooled.float(), pooled_grid.float())
