"""The `baselines` params section, kept apart from the baselines themselves so that params
validation never loads the image stack."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from geoloc_core.baselines import METHODS
from geoloc_core.section_model import SectionModel, whole

MAX_IMAGE_SIZE = 1024


class BaselineSettings(SectionModel):
    """The `baselines` params section; every key required, none unknown."""

    SECTION = "baselines"

    methods: tuple[Literal[METHODS], ...] = Field(
        min_length=1, description="which baselines to compute, in this order, each once"
    )
    seed: whole(ge=0, le=2**63 - 1) = Field(description="the random baseline's draw")
    image_size: whole(ge=2, le=MAX_IMAGE_SIZE) = Field(
        description="raw_pixels: images resized to this square before features"
    )
    batch_size: whole(ge=1, le=1_000_000) = Field(
        description="images (or cache rows) per batch over queries and reference set"
    )

    @field_validator("methods")
    @classmethod
    def _each_once(cls, methods: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(methods)) != len(methods):
            raise ValueError("names a baseline twice")
        return methods
