"""Typed views of the `backbone`, `features`, `model` and `train` params sections.

Every key of a section is required when it comes from params.yaml (nothing is silently
defaulted); the dataclass defaults are the papers' values, for code and tests that build a
config directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from geoloc_core.models.variants import variant_spec
from geoloc_core.section_fields import strict_values

GPS_PROJECTIONS = ("mercator", "equal_earth")  # encoders/gps.py implements each

DEVICES = ("cpu", "cuda", "auto")


def from_section(cls: type, m: Mapping[str, Any], section: str) -> Any:
    """Build cls from a params section: every field present, no unknown keys."""
    return cls(**strict_values(cls, m, section))


def _at_least(section: str, obj: Any, names: tuple[str, ...], minimum: float) -> None:
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise ValueError(f"{section}.{name}={value!r} must be a number >= {minimum}")


def _device(section: str, value: str) -> None:
    if value not in DEVICES:
        raise ValueError(f"{section}.device={value!r} must be one of {list(DEVICES)}")


@dataclass(frozen=True)
class BackboneConfig:
    """Where the frozen image/text towers come from (asset backbone_weights).

    Either `pretrained` names open_clip weights (full profile: ViT-L-14 + openai), or it is
    null and the towers are pretrained here, CLIP-style on the reference split's images and
    place captions, for pretrain_epochs (the demo profile, which cannot download weights).
    """

    architecture: str = "ViT-L-14"
    pretrained: str | None = "openai"
    pretrain_epochs: int = 0
    pretrain_batch_size: int = 128
    pretrain_lr: float = 1e-3
    pretrain_weight_decay: float = 0.1
    seed: int = 0
    num_threads: int = 2

    def __post_init__(self) -> None:
        _at_least("backbone", self, ("pretrain_epochs", "seed"), 0)
        _at_least("backbone", self, ("pretrain_batch_size", "num_threads"), 1)
        _at_least("backbone", self, ("pretrain_lr", "pretrain_weight_decay"), 0)
        if self.pretrained and self.pretrain_epochs:
            raise ValueError(
                f"backbone.pretrained={self.pretrained!r} and backbone.pretrain_epochs="
                f"{self.pretrain_epochs}: choose one; set pretrain_epochs to 0 to use the "
                "given weights, or pretrained to null to pretrain on the reference split"
            )
        if not self.pretrained and not self.pretrain_epochs:
            raise ValueError(
                "backbone.pretrained is null and backbone.pretrain_epochs is 0: the frozen "
                "towers would be random; name open_clip weights (e.g. openai) or pretrain"
            )

    @property
    def pretrains(self) -> bool:
        return self.pretrain_epochs > 0

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> BackboneConfig:
        return from_section(cls, m, "backbone")


@dataclass(frozen=True)
class FeaturesConfig:
    """How the frozen backbone's outputs are cached (asset backbone_features)."""

    token_grid: int = 4
    n_shards: int = 4
    batch_size: int = 64
    device: str = "auto"
    num_threads: int = 2

    def __post_init__(self) -> None:
        _at_least("features", self, ("token_grid", "n_shards", "batch_size", "num_threads"), 1)
        _device("features", self.device)

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> FeaturesConfig:
        return from_section(cls, m, "features")


@dataclass(frozen=True)
class ModelConfig:
    variant: str = "g3"  # image-only | g3 | dualgeo | dualgeo+text (models/variants.py)
    embed_dim: int = 512  # the GPS-aligned space (GeoCLIP's location encoder: 512)
    head_hidden: int = 1024  # hidden width of every projection head
    gps_sigmas: tuple[float, ...] = (1.0, 16.0, 256.0)
    gps_fourier_features: int = 512
    gps_hidden: int = 1024
    gps_layers: int = 3
    gps_init: str | None = None  # geoclip (the installed wheel's weights) or a .pth under the root
    gps_projection: str = "mercator"  # mercator (G3) | equal_earth (GeoCLIP's training input)
    fusion_dim: int = 512  # width of DualGeo's cross-attention
    fusion_heads: int = 8
    fusion_layers: int = 1
    seg_grid: int = 8  # segmentation tokens per side (label map side must be a multiple)
    seg_layers: int = 1  # self-attention layers over one image's segmentation tokens
    temperature_init: float = 0.07  # logit scale starts at log(1 / 0.07), as in CLIP/GeoCLIP

    def __post_init__(self) -> None:
        variant_spec(self.variant)
        _at_least(
            "model",
            self,
            (
                "embed_dim",
                "head_hidden",
                "gps_fourier_features",
                "gps_hidden",
                "gps_layers",
                "fusion_dim",
                "fusion_heads",
                "fusion_layers",
                "seg_grid",
            ),
            1,
        )
        _at_least("model", self, ("seg_layers",), 0)
        if self.gps_projection not in GPS_PROJECTIONS:
            raise ValueError(
                f"model.gps_projection={self.gps_projection!r} must be one of "
                f"{list(GPS_PROJECTIONS)} (GeoCLIP's weights were trained on equal_earth)"
            )
        if self.fusion_dim % self.fusion_heads:
            raise ValueError(
                f"model.fusion_dim={self.fusion_dim} must be a multiple of "
                f"model.fusion_heads={self.fusion_heads}"
            )
        if not 0 < self.temperature_init < 1:
            raise ValueError(f"model.temperature_init={self.temperature_init} must be in (0, 1)")

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> ModelConfig:
        return from_section(cls, m, "model")


@dataclass(frozen=True)
class TrainConfig:
    """The papers' optimisation: AdamW, StepLR(step 1 epoch, gamma 0.87), 10 epochs, batch 256;
    lr 3e-5 for the G3 family (image-only, g3) and 4e-5 for the DualGeo family."""

    seed: int = 0
    epochs: int = 10
    batch_size: int = 256
    lr_g3: float = 3e-5
    lr_dualgeo: float = 4e-5
    weight_decay: float = 1e-6
    lr_step_gamma: float = 0.87
    same_place_km: float = 1.0  # batch mates closer than this are positives, not negatives
    num_threads: int = 2
    device: str = "cpu"

    def __post_init__(self) -> None:
        _at_least("train", self, ("epochs", "batch_size", "num_threads"), 1)
        _at_least("train", self, ("seed", "weight_decay", "same_place_km"), 0)
        _at_least("train", self, ("lr_g3", "lr_dualgeo", "lr_step_gamma"), 0)
        if self.batch_size < 2:
            raise ValueError("train.batch_size must be >= 2: contrastive batches need negatives")
        _device("train", self.device)

    def lr_for(self, variant: str) -> float:
        return self.lr_dualgeo if variant_spec(variant).family == "dualgeo" else self.lr_g3

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> TrainConfig:
        return from_section(cls, m, "train")
