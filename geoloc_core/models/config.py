"""Typed views of the `model` and `train` params sections."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


def _from_mapping(cls: type, m: Mapping[str, Any], section: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(m) - known)
    if unknown:
        raise ValueError(
            f"params.yaml section '{section}' has unknown keys {unknown}; known: {sorted(known)}"
        )
    values = dict(m)
    for f in fields(cls):
        if f.name in values and isinstance(values[f.name], list):
            values[f.name] = tuple(values[f.name])
    return cls(**values)


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "geoloc-demo-vit-tiny"
    pretrained: str | None = None
    freeze_backbone: bool = False
    embed_dim: int = 128
    gps_sigmas: tuple[float, ...] = (1.0, 16.0, 256.0)
    gps_fourier_features: int = 256
    gps_hidden: int = 256
    temperature_init: float = 0.07

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> ModelConfig:
        return _from_mapping(cls, m, "model")


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    epochs: int = 10
    batch_size: int = 256
    lr: float = 3e-5
    weight_decay: float = 1e-6
    lr_step_gamma: float = 0.87
    same_place_km: float = 1.0
    num_threads: int = 2

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> TrainConfig:
        cfg = _from_mapping(cls, m, "train")
        for name in ("epochs", "batch_size"):
            if getattr(cfg, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(cfg, name)}")
        return cfg
