"""The `baselines` params section, kept apart from the baselines themselves so that params
validation never loads the image stack."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from geoloc_core.baselines import METHODS
from geoloc_core.section_model import SectionModel, distinct, whole

MAX_IMAGE_SIZE = 1024


class BaselineSettings(SectionModel):
    """The `baselines` params section; every key required, none unknown."""

    SECTION = "baselines"

    methods: Annotated[tuple[Literal[METHODS], ...], distinct("baseline")] = Field(
        min_length=1, description="which baselines to compute, in this order, each once"
    )
    seed: whole(ge=0, le=2**63 - 1) = Field(description="the random baseline's draw")
    image_size: whole(ge=2, le=MAX_IMAGE_SIZE) = Field(
        description="raw_pixels: images resized to this square before features"
    )
    batch_size: whole(ge=1, le=1_000_000) = Field(
        description="images (or cache rows) per batch over queries and reference set"
    )
