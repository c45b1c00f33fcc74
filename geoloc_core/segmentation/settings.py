"""The `segmentation` params section, validated, and the part of it that decides the cache's bytes.

Every key is required (nothing is silently defaulted). Dagster hashes the whole section into the
asset's code_version; a shard stores only the hash of the content settings, so changing an
execution setting (batch size, device, threads) re-runs the asset cheaply: every finished shard
is verified and kept.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import Field

from geoloc_core.params import canonical_json
from geoloc_core.section_model import FLAG, SectionModel, real, text, whole
from geoloc_core.segmentation.errors import SegmentationError

# Bump when the code changes what a shard holds for the same settings.
CACHE_FORMAT = "geoloc-segmentation/1"
PROVIDERS = ("demo", "segformer", "mask2former")
MODEL_PROVIDERS = ("segformer", "mask2former")
DEVICES = ("auto", "cpu", "cuda")
NOISE_UNITS = ("pixel", "class")
MAX_SHARDS = 100_000
MAX_RESOLUTION = 4096


class SegmentationSettings(SectionModel):
    """DualGeo's semantic view: an ADE20K-150 label map and class histogram per image (asset
    segmentation_cache); only the content settings decide a shard's bytes."""

    SECTION = "segmentation"
    ERROR = SegmentationError

    provider: Literal[PROVIDERS] = Field(
        description="demo (the demo world's label maps) | segformer | mask2former"
    )
    model_id: text() = Field(
        description="transformers checkpoint (hub id or local directory); unused by demo"
    )
    input_resolution: whole(ge=16, le=MAX_RESOLUTION) = Field(
        description="square model input, px (512 for *-512-512 checkpoints); unused by demo"
    )
    output_resolution: whole(ge=1, le=MAX_RESOLUTION) = Field(
        description="stored label map side: 64 -> 4 KiB per image"
    )
    label_noise: real(ge=0, le=1) = Field(
        description="fraction of pixels (or chance per class) given a seeded wrong class"
    )
    label_noise_unit: Literal[NOISE_UNITS] = Field(
        description="pixel | class (a whole class region relabelled)"
    )
    condition_errors: FLAG = Field(
        description="demo: lose class regions at published fog/rain/night/snow rates"
    )
    seed: whole(ge=0, le=2**63 - 1) = Field(description="seeds the label noise")
    n_shards: whole(ge=1, le=MAX_SHARDS) = Field(
        description="image ids are spread over this many shards by hash"
    )
    batch_size: whole(ge=1, le=1_000_000) = Field(
        description="images per inference batch and per resumable part file"
    )
    device: Literal[DEVICES] = Field(
        description="auto: cuda in fp16 when present, else cpu | cpu | cuda"
    )
    num_threads: whole(ge=1, le=1024) = Field(description="torch CPU threads")
    progress: FLAG = Field(description="progress bar (hidden anyway without a terminal)")

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

