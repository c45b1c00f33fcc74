"""Typed `backbone` and `features` params sections: where the frozen towers come from and how
their outputs are cached. Apart from the model's settings, so the backbone steps' code (their
code version) does not include the model variants.

Every key is required when a section comes from params.yaml (`from_section`); the defaults are
the papers' values, for code and tests that build a config directly.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from geoloc_core.encoders.architectures import OPENAI_TAG, quick_gelu_refusal
from geoloc_core.section_model import SectionModel, real, text, whole

DEVICES = ("cpu", "cuda", "auto")
Device = Literal[DEVICES]
IMPLEMENTATIONS = ("open_clip", "transformers")
PRECISIONS = ("fp16", "fp32")


class BackboneConfig(SectionModel):
    """Where the frozen image/text towers come from (asset backbone_weights).

    Either `pretrained` names weights (full profile: ViT-L-14-quickgelu + openai with open_clip,
    or a transformers CLIP checkpoint), or it is null and the towers are pretrained here,
    CLIP-style on the reference split's images and place captions, for pretrain_epochs (the
    demo profile, which cannot download weights). OpenAI's weights with an architecture that
    open_clip builds with nn.GELU (plain `ViT-L-14`) are refused: they were trained with
    QuickGELU.
    """

    SECTION = "backbone"

    implementation: Literal[IMPLEMENTATIONS] = Field(
        "open_clip",
        description="open_clip | transformers (a CLIPModel checkpoint, as G3 and GeoCLIP load)",
    )
    architecture: text() = Field(
        "ViT-L-14-quickgelu",
        description="open_clip architecture name (full profile: ViT-L-14-quickgelu); "
        "transformers: a name for records (the checkpoint's config.json decides)",
    )
    pretrained: text() | None = Field(
        "openai",
        description="open_clip tag or weights file (full profile: openai), or with "
        "transformers a hub id or checkpoint directory; null: pretrain here",
    )
    pretrain_epochs: whole(ge=0) = Field(
        0, description="demo only; 0 when pretrained names weights"
    )
    pretrain_batch_size: whole(ge=1) = Field(128, description="pretraining batch size")
    pretrain_lr: real(ge=0) = Field(1e-3, description="pretraining learning rate")
    pretrain_weight_decay: real(ge=0) = Field(0.1, description="pretraining weight decay")
    pretrain_views_weight: real(ge=0) = Field(
        2.0,
        description="weight of the image-image term between views of one place (equal "
        "coordinates), paired in each batch; 0: the caption loss alone",
    )
    pretrain_augment: real(ge=0, le=1) = Field(
        0.0,
        description="strength of the generic perturbations of a training image (zoom, light, "
        "colour, haze, blur, noise), 0 (none) to 1",
    )
    pretrain_augment_share: real(ge=0, le=1) = Field(
        1.0,
        description="share of the training images perturbed each time they are shown; the "
        "others are shown as they are",
    )
    pretrain_generic_share: real(ge=0, le=1) = Field(
        0.0,
        description="procedurally drawn non-photos (noise, flat colours, gradients, stripes, "
        "checks) captioned with their kind, added to the pretraining, as a share of the "
        "reference images, so that such a picture is not mapped onto a street; 0: none",
    )
    seed: whole(ge=0) = Field(0, description="seeds the pretraining")
    num_threads: whole(ge=1) = Field(2, description="torch CPU threads")

    @model_validator(mode="after")
    def _one_source(self) -> BackboneConfig:
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
        if self.implementation == "transformers" and not self.pretrained:
            raise ValueError(
                "backbone.implementation=transformers needs backbone.pretrained (a hub id or a "
                "checkpoint directory); pretraining here uses open_clip"
            )
        return self

    @model_validator(mode="after")
    def _activation(self) -> BackboneConfig:
        """OpenAI's weights need QuickGELU: refused where open_clip would build nn.GELU."""
        if self.implementation == "open_clip" and self.pretrained == OPENAI_TAG:
            problem = quick_gelu_refusal(self.architecture, weights_need_quick_gelu=True)
            if problem:
                raise ValueError(
                    f"backbone.architecture={self.architecture!r} with backbone.pretrained="
                    f"{OPENAI_TAG!r}: {problem}"
                )
        return self

    @property
    def pretrains(self) -> bool:
        return self.pretrain_epochs > 0


class FeaturesConfig(SectionModel):
    """How the frozen backbone's outputs are cached (asset backbone_features)."""

    SECTION = "features"

    precision: Literal[PRECISIONS] = Field(
        "fp16",
        description="how the tower's outputs are stored: fp16 (half the disk) | fp32 (exact)",
    )
    token_grid: whole(ge=1) = Field(
        4, description="patch tokens average-pooled to token_grid x token_grid per image"
    )
    n_shards: whole(ge=1) = Field(4, description='partitions "000".. (full profile: 256)')
    batch_size: whole(ge=1) = Field(64, description="images per batch")
    device: Device = Field("auto", description="auto: cuda when present | cpu | cuda")
    num_threads: whole(ge=1) = Field(2, description="torch CPU threads")
