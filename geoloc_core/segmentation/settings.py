"""The `segmentation` params section, validated, and the part of it that decides the cache's bytes.

Every key is required (nothing is silently defaulted). Dagster hashes the whole section into the
asset's code_version; a shard stores only the hash of the content settings, so changing an
execution setting (batch size, device, threads) re-runs the asset cheaply: every finished shard
is verified and kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from geoloc_core.params import canonical_json
from geoloc_core.segmentation.errors import SegmentationError

# Bump when the code changes what a shard holds for the same settings.
CACHE_FORMAT = "geoloc-segmentation/1"
PROVIDERS = ("demo", "segformer", "mask2former")
MODEL_PROVIDERS = ("segformer", "mask2former")
DEVICES = ("auto", "cpu", "cuda")
NOISE_UNITS = ("pixel", "class")
MAX_SHARDS = 100_000
MAX_RESOLUTION = 4096


@dataclass(frozen=True)
class SegmentationSettings:
    provider: str  # demo | segformer | mask2former
    model_id: str  # transformers checkpoint (hub id or local directory); unused by demo
    input_resolution: int  # square model input, pixels; unused by demo
    output_resolution: int  # stored label map side, pixels
    label_noise: float  # fraction of pixels (or chance per class) given a seeded wrong class
    label_noise_unit: str  # pixel | class
    condition_errors: bool  # demo: degrade label maps with each view's conditions (published rates)
    seed: int  # seeds the label noise
    n_shards: int  # image ids are spread over this many shards by hash
    batch_size: int  # images per inference batch and per resumable part file
    device: str  # auto (cuda when present, fp16 there) | cpu | cuda
    num_threads: int  # torch CPU threads
    progress: bool  # progress bar (hidden anyway without a terminal)

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> SegmentationSettings:
        known = [f.name for f in fields(cls)]
        missing = [name for name in known if name not in section]
        unknown = sorted(set(section) - set(known))
        if missing or unknown:
            raise SegmentationError(
                "params.yaml section 'segmentation': "
                + (f"missing {missing}; " if missing else "")
                + (f"unknown {unknown}; " if unknown else "")
                + f"the keys are {known} (see README, Segmentation)"
            )
        return cls(**{name: section[name] for name in known})

    def __post_init__(self) -> None:
        _choice("provider", self.provider, PROVIDERS)
        _choice("device", self.device, DEVICES)
        _choice("label_noise_unit", self.label_noise_unit, NOISE_UNITS)
        if not isinstance(self.model_id, str) or not self.model_id:
            raise SegmentationError(
                f"segmentation.model_id={self.model_id!r}: give a transformers checkpoint id "
                "(e.g. nvidia/segformer-b5-finetuned-ade-640-640) or a local directory"
            )
        _whole("input_resolution", self.input_resolution, 16, MAX_RESOLUTION)
        _whole("output_resolution", self.output_resolution, 1, MAX_RESOLUTION)
        _whole("seed", self.seed, 0, 2**63 - 1)
        _whole("n_shards", self.n_shards, 1, MAX_SHARDS)
        _whole("batch_size", self.batch_size, 1, 1_000_000)
        _whole("num_threads", self.num_threads, 1, 1024)
        if isinstance(self.label_noise, bool) or not isinstance(self.label_noise, int | float):
            raise SegmentationError(
                f"segmentation.label_noise={self.label_noise!r}: must be a number in [0, 1]"
            )
        if not 0.0 <= float(self.label_noise) <= 1.0:
            raise SegmentationError(
                f"segmentation.label_noise={self.label_noise}: must lie between 0 and 1"
            )
        if not isinstance(self.condition_errors, bool):
            raise SegmentationError(
                f"segmentation.condition_errors={self.condition_errors!r}: must be true or false"
            )
        if not isinstance(self.progress, bool):
            raise SegmentationError(
                f"segmentation.progress={self.progress!r}: must be true or false"
            )

    def content(self) -> dict[str, Any]:
        """The settings that decide a shard's content; execution settings are left out."""
        content: dict[str, Any] = {
            "format": CACHE_FORMAT,
            "provider": self.provider,
            "output_resolution": self.output_resolution,
            "label_noise": float(self.label_noise),
        }
        if self.label_noise > 0:
            content["label_noise_unit"] = self.label_noise_unit
        if self.provider == "demo":
            content["condition_errors"] = self.condition_errors
        if self.label_noise > 0 or content.get("condition_errors"):
            content["seed"] = self.seed
        if self.provider in MODEL_PROVIDERS:
            content["model_id"] = self.model_id
            content["input_resolution"] = self.input_resolution
        return content

    def fingerprint(self) -> str:
        """Stored in every shard and part file: a mismatch means 'computed under other settings'."""
        return hashlib.sha256(canonical_json(self.content()).encode()).hexdigest()[:16]


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SegmentationError(f"segmentation.{name}={value!r}: must be one of {list(allowed)}")


def _whole(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SegmentationError(f"segmentation.{name}={value!r}: must be a whole number")
    if not low <= value <= high:
        raise SegmentationError(f"segmentation.{name}={value}: must lie between {low} and {high}")
