"""DualGeo's segmentation view: an ADE20K label map -> one token per grid cell.

A cell's token is its class histogram (the patchified one-hot map, averaged) projected to the
fusion width, plus a learned position embedding; self-attention layers then let the cells of
one image see each other. Mean-pooling a linear map of histograms would keep only the image's
global histogram, so the layers are what keeps the layout (sky above road, a tower on the
left). Attention is over the tokens of one image only (batch_first, tokens on axis 1).
"""

from __future__ import annotations

import torch
from torch import nn

from geoloc_core.ade20k import NUM_CLASSES


def patch_histograms(label_maps: torch.Tensor, grid: int) -> torch.Tensor:
    """(B, R, R) integer ids -> (B, grid*grid, 150) class fractions per cell, row-major."""
    if label_maps.ndim != 3 or label_maps.shape[1] != label_maps.shape[2]:
        raise ValueError(f"label maps must be (B, R, R), got {tuple(label_maps.shape)}")
    batch, side, _ = label_maps.shape
    if side % grid:
        raise ValueError(
            f"label maps of side {side} cannot be cut into model.seg_grid={grid} cells per "
            "side; choose a divisor of segmentation.output_resolution"
        )
    cell = side // grid
    ids = label_maps.long().reshape(batch, grid, cell, grid, cell).permute(0, 1, 3, 2, 4)
    ids = ids.reshape(batch, grid * grid, cell * cell)
    counts = torch.zeros(batch, grid * grid, NUM_CLASSES, device=label_maps.device)
    counts.scatter_add_(2, ids, torch.ones_like(ids, dtype=counts.dtype))
    return counts / (cell * cell)


class SegmentationEncoder(nn.Module):
    def __init__(self, grid: int, dim: int, heads: int, layers: int):
        super().__init__()
        self.grid = grid
        self.embed = nn.Linear(NUM_CLASSES, dim)
        self.positions = nn.Parameter(torch.zeros(1, grid * grid, dim))
        nn.init.normal_(self.positions, std=0.02)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                dim, heads, dim_feedforward=2 * dim, dropout=0.0, batch_first=True, norm_first=True
            )
            for _ in range(layers)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, label_maps: torch.Tensor) -> torch.Tensor:
        """(B, R, R) ADE20K ids -> (B, grid*grid, dim) tokens."""
        tokens = self.embed(patch_histograms(label_maps, self.grid)) + self.positions
        for layer in self.layers:
            tokens = layer(tokens)
        return self.norm(tokens)
