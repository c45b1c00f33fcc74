"""Image-to-GPS alignment: the first predictor, and the trunk later variants build on.

An open_clip image tower feeds a head that maps into the GPS encoder's space; training pulls an
image towards the encoding of where it was taken (InfoNCE with a learnable temperature).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from geoloc_core.encoders.clip_towers import ClipTowers, TowerSpec, build_clip
from geoloc_core.encoders.gps import GPSEncoder
from geoloc_core.models.config import ModelConfig
from geoloc_core.models.losses import multi_positive_info_nce, same_place_mask


class ImageGPSAlignment(nn.Module):
    def __init__(self, config: ModelConfig, towers: ClipTowers | None = None, seed: int = 0):
        super().__init__()
        self.config = config
        torch.manual_seed(seed)
        towers = towers or build_clip(TowerSpec(config.backbone, config.pretrained))
        self.image_size = towers.image_size
        self.mean = towers.mean
        self.std = towers.std
        self.visual = towers.model.visual
        if config.freeze_backbone:
            self.visual.requires_grad_(False)
        tower_dim = int(self.visual.output_dim)
        self.image_to_gps = nn.Sequential(
            nn.Linear(tower_dim, config.embed_dim),
            nn.ReLU(),
            nn.Linear(config.embed_dim, config.embed_dim),
        )
        self.gps_encoder = GPSEncoder(
            config.embed_dim,
            config.gps_sigmas,
            config.gps_fourier_features,
            config.gps_hidden,
            seed=seed,
        )
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / config.temperature_init)))

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised pixels -> (B, D) unit vectors in the GPS space."""
        return F.normalize(self.image_to_gps(self.visual(pixels)), dim=-1)

    def encode_gps(self, latlon: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.gps_encoder(latlon), dim=-1)

    def temperature(self) -> float:
        return float(1 / self.logit_scale.exp())

    def loss(
        self, pixels: torch.Tensor, latlon: torch.Tensor, same_place_km: float
    ) -> torch.Tensor:
        image = self.encode_image(pixels)
        gps = self.encode_gps(latlon)
        logits = self.logit_scale.exp().clamp(max=100) * image @ gps.t()
        return multi_positive_info_nce(logits, same_place_mask(latlon, same_place_km))
