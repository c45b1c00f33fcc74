"""DualGeo's fusion: bidirectional cross-attention between one image's patch tokens and the same
image's segmentation tokens.

Inputs are (B, tokens, dim) and attention runs over the tokens axis of each sample only, so an
image never attends to its batch mates. (A public implementation attends over pooled (B, dim)
vectors reshaped to one sequence, which makes every embedding depend on the rest of the batch;
the 3-D check below refuses that shape.) Each direction is residual + LayerNorm, then a
residual feed-forward + LayerNorm (the original Transformer's post-norm block).
"""

from __future__ import annotations

import torch
from torch import nn


class CrossAttentionBlock(nn.Module):
    """Queries from one view attend to the other view's tokens of the same image."""

    def __init__(self, dim: int, heads: int, ff_mult: int = 2):
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, dropout=0.0, batch_first=True)
        self.norm_attention = nn.LayerNorm(dim)
        self.feed_forward = nn.Sequential(
            nn.Linear(dim, ff_mult * dim), nn.GELU(), nn.Linear(ff_mult * dim, dim)
        )
        self.norm_feed_forward = nn.LayerNorm(dim)

    def forward(
        self, queries: torch.Tensor, context: torch.Tensor, return_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """-> (updated queries (B, Tq, dim), weights (B, heads, Tq, Tk) or None)."""
        attended, weights = self.attention(
            queries,
            context,
            context,
            need_weights=return_weights,
            average_attn_weights=False,
        )
        x = self.norm_attention(queries + attended)
        x = self.norm_feed_forward(x + self.feed_forward(x))
        return x, weights


class BidirectionalCrossAttention(nn.Module):
    """image->segmentation and segmentation->image, both from the same (pre-update) inputs."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.image_to_seg = CrossAttentionBlock(dim, heads)
        self.seg_to_image = CrossAttentionBlock(dim, heads)

    def forward(
        self, image_tokens: torch.Tensor, seg_tokens: torch.Tensor, return_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        _check_views(image_tokens, seg_tokens)
        image_out, image_weights = self.image_to_seg(image_tokens, seg_tokens, return_weights)
        seg_out, seg_weights = self.seg_to_image(seg_tokens, image_tokens, return_weights)
        weights = {}
        if return_weights:
            weights = {"image_to_seg": image_weights, "seg_to_image": seg_weights}
        return image_out, seg_out, weights


def _check_views(image_tokens: torch.Tensor, seg_tokens: torch.Tensor) -> None:
    if image_tokens.ndim != 3 or seg_tokens.ndim != 3:
        raise ValueError(
            "cross-attention takes per-image token sequences (B, tokens, dim); got "
            f"{tuple(image_tokens.shape)} and {tuple(seg_tokens.shape)}. Pooled (B, dim) "
            "vectors would make images attend to their batch mates"
        )
    if image_tokens.shape[0] != seg_tokens.shape[0] or image_tokens.shape[2] != seg_tokens.shape[2]:
        raise ValueError(
            f"image tokens {tuple(image_tokens.shape)} and segmentation tokens "
            f"{tuple(seg_tokens.shape)} must agree on batch size and width"
        )
