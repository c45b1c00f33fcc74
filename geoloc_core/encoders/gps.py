"""GPS encoder (GeoCLIP/G3): a map projection -> random Fourier features at several scales ->
MLPs, summed.

Several sigmas let one encoder resolve continents (small sigma) and streets (large sigma); the
Fourier matrices are fixed buffers, seeded, so a checkpoint fully determines the encoder. Each
branch has GeoCLIP's shape (Fourier features, `layers` hidden Linear+ReLU, a linear head), so
GeoCLIP's released location-encoder weights can initialise it (encoders/geoclip.py). The
projection is a setting: G3 feeds Mercator, GeoCLIP trained its weights on Equal Earth.
`mercator_g3` is Mercator exactly as G3's checkpoint was trained on it: [northing, easting]
(y before x) in metres / 20037508.3427892, computed in float64 and rounded to float32 once, as
G3's pyproj call does, so an imported g3.pth sees the inputs it was trained on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

MERCATOR_MAX_LAT = 85.05112878  # where EPSG:3857 reaches +-1; beyond it the projection is undefined
# Equal Earth's polynomial (Savric, Patterson & Jenny 2018) and the scale GeoCLIP applies after
# it (x * 66.50336 / 180), so GeoCLIP's weights see the inputs they were trained on.
EQUAL_EARTH_A = (1.340264, -0.081106, 0.000893, 0.003796)
GEOCLIP_EQUAL_EARTH_SCALE = 66.50336


def mercator_normalized_torch(latlon: torch.Tensor) -> torch.Tensor:
    """EPSG:3857 scaled to [-1, 1], on the tensor's device (matches geo.projection in numpy)."""
    lat = latlon[:, 0].clamp(-MERCATOR_MAX_LAT, MERCATOR_MAX_LAT)
    x = latlon[:, 1] / 180.0
    y = torch.log(torch.tan(math.pi / 4 + torch.deg2rad(lat) / 2)) / math.pi
    return torch.stack([x, y], dim=-1)


def equal_earth_geoclip_torch(latlon: torch.Tensor) -> torch.Tensor:
    """Equal Earth (x, y) in GeoCLIP's scaling; defined at every latitude, poles included.

    The terms are evaluated in the order GeoCLIP evaluates them: the sigma-256 Fourier branch
    multiplies the input by ~1600, so one float32 ulp of difference here shows up downstream.
    """
    a1, a2, a3, a4 = EQUAL_EARTH_A
    sqrt3 = torch.sqrt(torch.tensor(3.0, dtype=latlon.dtype, device=latlon.device))
    lat, lon = torch.deg2rad(latlon[:, 0]), torch.deg2rad(latlon[:, 1])
    theta = torch.asin(sqrt3 / 2 * torch.sin(lat))
    denominator = 3 * (9 * a4 * theta**8 + 7 * a3 * theta**6 + 3 * a2 * theta**2 + a1)
    x = 2 * sqrt3 * lon * torch.cos(theta) / denominator
    y = a4 * theta**9 + a3 * theta**7 + a2 * theta**3 + a1 * theta
    return torch.stack([x, y], dim=1) * GEOCLIP_EQUAL_EARTH_SCALE / 180


# EPSG:3857's half extent (pi * the WGS-84 semi-major axis), the divisor G3 applies.
WEB_MERCATOR_HALF_EXTENT_M = 20037508.3427892
WGS84_SEMI_MAJOR_M = 6378137.0
# Latitudes past this are pulled back to it in mercator_g3: at +-90 the projection is infinite
# (G3's code would produce NaN there); everywhere below it G3's values are kept unclamped.
G3_MAX_LAT = 89.9999


def mercator_g3_torch(latlon: torch.Tensor) -> torch.Tensor:
    """G3's location input: [northing, easting] / 20037508.3427892 (not clamped at 85.05).

    G3 rounds the degrees to float32, projects them in float64 (pyproj, EPSG:4326 -> 3857),
    rounds the metres to float32 and divides in float32; the same steps are taken here, so
    the sigma-256 branch (which multiplies the input by ~1600) sees the same float32 values.
    """
    degrees = latlon.float().double()
    lat = degrees[:, 0].clamp(-G3_MAX_LAT, G3_MAX_LAT)
    lon = degrees[:, 1]
    easting = WGS84_SEMI_MAJOR_M * torch.deg2rad(lon)
    northing = WGS84_SEMI_MAJOR_M * torch.log(torch.tan(math.pi / 4 + torch.deg2rad(lat) / 2))
    metres = torch.stack([northing, easting], dim=-1).float()
    return (metres / WEB_MERCATOR_HALF_EXTENT_M).to(latlon.dtype)


PROJECTIONS = {
    "mercator": mercator_normalized_torch,
    "equal_earth": equal_earth_geoclip_torch,
    "mercator_g3": mercator_g3_torch,
}


class RandomFourierFeatures(nn.Module):
    """Gaussian RFF: [cos(2 pi x B), sin(2 pi x B)] with B ~ N(0, sigma^2), fixed after init."""

    def __init__(self, in_dim: int, n_features: int, sigma: float, generator: torch.Generator):
        super().__init__()
        if n_features % 2:
            raise ValueError(f"model.gps_fourier_features must be even, got {n_features}")
        matrix = torch.randn(in_dim, n_features // 2, generator=generator) * sigma
        self.register_buffer("matrix", matrix)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        projected = 2 * math.pi * x @ self.matrix
        return torch.cat([projected.cos(), projected.sin()], dim=-1)


class GPSBranch(nn.Module):
    """One scale: Fourier features, `layers` hidden Linear+ReLU of width `hidden`, a linear head."""

    def __init__(
        self,
        sigma: float,
        n_features: int,
        hidden: int,
        layers: int,
        out_dim: int,
        generator: torch.Generator,
    ):
        super().__init__()
        self.rff = RandomFourierFeatures(2, n_features, sigma, generator)
        blocks: list[nn.Module] = []
        width = n_features
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.mlp = nn.Sequential(*blocks)
        self.head = nn.Linear(width, out_dim)

    def forward(self, xy: torch.Tensor) -> torch.Tensor:
        return self.head(self.mlp(self.rff(xy)))


class GPSEncoder(nn.Module):
    def __init__(
        self,
        embed_dim: int,
        sigmas: Sequence[float] = (2.0**0, 2.0**4, 2.0**8),
        n_features: int = 512,
        hidden: int = 1024,
        layers: int = 3,
        seed: int = 0,
        projection: str = "mercator",
    ):
        super().__init__()
        if projection not in PROJECTIONS:
            raise ValueError(
                f"model.gps_projection={projection!r} is not one of {list(PROJECTIONS)}"
            )
        self.projection = projection
        if not sigmas:
            raise ValueError("model.gps_sigmas must name at least one scale")
        if layers < 1:
            raise ValueError(f"model.gps_layers must be >= 1, got {layers}")
        generator = torch.Generator().manual_seed(seed)
        self.sigmas = tuple(float(s) for s in sigmas)
        self.branches = nn.ModuleList(
            GPSBranch(float(sigma), n_features, hidden, layers, embed_dim, generator)
            for sigma in sigmas
        )

    def forward(self, latlon: torch.Tensor) -> torch.Tensor:
        """latlon: (B, 2) degrees -> (B, embed_dim), not normalised."""
        xy = PROJECTIONS[self.projection](latlon)
        return torch.stack([branch(xy) for branch in self.branches]).sum(dim=0)
