"""GPS encoder (GeoCLIP/G3): Mercator -> random Fourier features at several scales -> MLPs, summed.

Several sigmas let one encoder resolve continents (small sigma) and streets (large sigma); the
Fourier matrices are fixed buffers, seeded, so a checkpoint fully determines the encoder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

MERCATOR_MAX_LAT = 85.05112878  # where EPSG:3857 reaches +-1; beyond it the projection is undefined


def mercator_normalized_torch(latlon: torch.Tensor) -> torch.Tensor:
    """EPSG:3857 scaled to [-1, 1], on the tensor's device (matches geo.projection in numpy)."""
    lat = latlon[:, 0].clamp(-MERCATOR_MAX_LAT, MERCATOR_MAX_LAT)
    x = latlon[:, 1] / 180.0
    y = torch.log(torch.tan(math.pi / 4 + torch.deg2rad(lat) / 2)) / math.pi
    return torch.stack([x, y], dim=-1)


class RandomFourierFeatures(nn.Module):
    """Gaussian RFF: [cos(2 pi B x), sin(2 pi B x)] with B ~ N(0, sigma^2), fixed after init."""

    def __init__(self, in_dim: int, n_features: int, sigma: float, generator: torch.Generator):
        super().__init__()
        if n_features % 2:
            raise ValueError(f"gps_fourier_features must be even, got {n_features}")
        matrix = torch.randn(in_dim, n_features // 2, generator=generator) * sigma
        self.register_buffer("matrix", matrix)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        projected = 2 * math.pi * x @ self.matrix
        return torch.cat([projected.cos(), projected.sin()], dim=-1)


class GPSEncoder(nn.Module):
    def __init__(
        self,
        embed_dim: int,
        sigmas: Sequence[float] = (2.0**0, 2.0**4, 2.0**8),
        n_features: int = 256,
        hidden: int = 256,
        seed: int = 0,
    ):
        super().__init__()
        if not sigmas:
            raise ValueError("gps_sigmas must name at least one scale")
        generator = torch.Generator().manual_seed(seed)
        self.branches = nn.ModuleList(
            nn.Sequential(
                RandomFourierFeatures(2, n_features, float(sigma), generator),
                nn.Linear(n_features, hidden),
                nn.ReLU(),
                nn.Linear(hidden, hidden),
                nn.ReLU(),
                nn.Linear(hidden, embed_dim),
            )
            for sigma in sigmas
        )

    def forward(self, latlon: torch.Tensor) -> torch.Tensor:
        """latlon: (B, 2) degrees -> (B, embed_dim), not normalised."""
        x = mercator_normalized_torch(latlon)
        return torch.stack([branch(x) for branch in self.branches]).sum(dim=0)
