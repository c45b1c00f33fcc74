"""Typed `model` and `train` params sections (the backbone's are in encoders/settings.py).

Every key is required when a section comes from params.yaml (`from_section`); the defaults are
the papers' values, for code and tests that build a config directly.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from geoloc_core.encoders.settings import Device
from geoloc_core.models.variants import VARIANTS, variant_spec
from geoloc_core.section_model import FLAG, SectionModel, real, text, whole

GPS_PROJECTIONS = ("mercator", "equal_earth", "mercator_g3")  # encoders/gps.py implements each
# Keys added after the first saved-model format, with the value that builds the model that
# format described: a saved config.json omits them at that value (so a demo model's file stays
# byte-identical) and loading fills them in (models/persistence.py).
ARCHITECTURE_KEYS_SINCE_V1 = {"gps_branch_dim": None, "text_head": False}
Variant = Literal[tuple(VARIANTS)]  # the names in models/variants.py


class ModelConfig(SectionModel):
    """The alignment model's shape (asset alignment_model)."""

    SECTION = "model"

    variant: Variant = Field("g3", description="image-only | g3 | dualgeo | dualgeo+text")
    embed_dim: whole(ge=1) = Field(
        512, description="GPS-aligned space (full profile: 512, GeoCLIP's)"
    )
    head_hidden: whole(ge=1) = Field(1024, description="hidden width of every projection head")
    gps_sigmas: tuple[real(gt=0), ...] = Field(
        (1.0, 16.0, 256.0), min_length=1, description="2^0, 2^4, 2^8 as in GeoCLIP / G3"
    )
    gps_fourier_features: whole(ge=1) = Field(512, description="full profile: 512")
    gps_hidden: whole(ge=1) = Field(1024, description="full profile: 1024")
    gps_layers: whole(ge=1) = Field(3, description="full profile: 3")
    gps_init: text() | None = Field(
        None,
        description="geoclip: the geoclip wheel's trained encoder (needs GeoCLIP's sizes), "
        "or a .pth under the root; null: trained from scratch",
    )
    gps_projection: Literal[GPS_PROJECTIONS] = Field(
        "mercator",
        description="mercator ([x, y] in [-1, 1]) | mercator_g3 (G3's checkpoint: [northing, "
        "easting] / 20037508.34) | equal_earth (what GeoCLIP's weights were trained on)",
    )
    gps_branch_dim: whole(ge=1) | None = Field(
        None,
        description="output width of each GPS branch (their sum); a location projection MLP "
        "gps_branch_dim -> gps_branch_dim -> embed_dim follows (G3: 512 -> 512 -> 768). "
        "null: the branches output embed_dim, with no location projection",
    )
    text_head: FLAG = Field(
        False,
        description="a trainable head text_dim -> head_hidden -> text_dim on the caption "
        "embeddings, as G3's text_projection_else (G3: true); false: captions used as frozen",
    )
    fusion_dim: whole(ge=1) = Field(
        512, description="DualGeo cross-attention width (full profile: 512)"
    )
    fusion_heads: whole(ge=1) = Field(8, description="full profile: 8")
    fusion_layers: whole(ge=1) = Field(1, description="DualGeo cross-attention layers")
    seg_grid: whole(ge=1) = Field(
        8, description="seg_grid x seg_grid segmentation tokens per image"
    )
    seg_layers: whole(ge=0) = Field(
        1, description="self-attention layers over one image's segmentation tokens"
    )
    temperature_init: real(gt=0, lt=1) = Field(
        0.07, description="logit scale starts at log(1/temperature_init)"
    )

    @model_validator(mode="after")
    def _text_head_needs_text(self) -> ModelConfig:
        if self.text_head and not variant_spec(self.variant).uses_text:
            raise ValueError(
                f"model.text_head=true needs a variant with a text term (g3 or dualgeo+text), "
                f"not model.variant={self.variant!r}; set text_head to false"
            )
        return self

    @model_validator(mode="after")
    def _heads_divide_width(self) -> ModelConfig:
        if self.fusion_dim % self.fusion_heads:
            raise ValueError(
                f"model.fusion_dim={self.fusion_dim} must be a multiple of "
                f"model.fusion_heads={self.fusion_heads}"
            )
        return self


class TrainConfig(SectionModel):
    """The papers' optimisation: AdamW, StepLR(step 1 epoch, gamma 0.87), 10 epochs, batch 256;
    lr 3e-5 for the G3 family (image-only, g3) and 4e-5 for the DualGeo family."""

    SECTION = "train"

    seed: whole(ge=0) = Field(0, description="seeds the training")
    epochs: whole(ge=1) = Field(10, description="papers: 10")
    batch_size: whole(ge=2) = Field(
        256, description="papers: 256; >= 2: contrastive batches need negatives"
    )
    lr_g3: real(ge=0) = Field(3e-5, description="image-only and g3 (papers: 3e-5)")
    lr_dualgeo: real(ge=0) = Field(4e-5, description="dualgeo and dualgeo+text (papers: 4e-5)")
    weight_decay: real(ge=0) = Field(1e-6, description="AdamW weight decay")
    lr_step_gamma: real(ge=0) = Field(0.87, description="StepLR gamma, one step per epoch")
    same_place_km: real(ge=0) = Field(
        1.0, description="batch mates closer than this count as positives"
    )
    num_threads: whole(ge=1) = Field(2, description="torch CPU threads")
    device: Device = Field("cpu", description="cpu | cuda | auto")
    imported_model: text() | None = Field(
        None,
        description="an import folder under the root (artifacts/imports/g3, written by "
        "`geoloc import g3`) whose model alignment_model adopts instead of training; null: "
        "train",
    )
    order: Literal["global", "shards"] = Field(
        "global",
        description="global: one permutation of every sample (the demo's order) | shards: the "
        "feature shards in a seeded order, each shard's rows shuffled, read as a stream whose "
        "memory does not grow with the reference set (MP16)",
    )
    amp: Literal["off", "fp16", "bf16"] = Field(
        "off",
        description="mixed precision: off | fp16 (CUDA only, with a gradient scaler) | bf16 "
        "(CUDA, or CPU autocast)",
    )
    devices: whole(ge=1) = Field(
        1,
        description="processes (one device each): > 1 trains under torchrun with in-batch "
        "negatives gathered across them (gloo on cpu, nccl on cuda)",
    )
    checkpoint_every_steps: whole(ge=0) = Field(
        0,
        description="0: a checkpoint at the end of each epoch only | N > 0: also one every N "
        "optimiser steps within an epoch, from which an interrupted run goes on at the next "
        "batch (an MP16 epoch is long)",
    )

    @model_validator(mode="after")
    def _amp_fits_device(self) -> TrainConfig:
        if self.amp == "fp16" and self.device == "cpu":
            raise ValueError(
                "train.amp=fp16 needs a CUDA device but train.device is cpu: set train.amp to "
                "off or bf16 (CPU autocast), or train.device to cuda"
            )
        return self

    def lr_for(self, variant: str) -> float:
        return self.lr_dualgeo if variant_spec(variant).family == "dualgeo" else self.lr_g3
