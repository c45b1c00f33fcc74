"""Typed `verification` params section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from geoloc_core.section_model import SectionModel, text, whole

METHODS = ("top1", "verify")


class VerificationSettings(SectionModel):
    """method top1 takes the first re-ranked candidate (the ablation without verification);
    verify takes the argmax of cos(image GPS-aligned embedding, candidate GPS embedding) over
    the pool: the top pool_size re-ranked candidates (G3's S), the LMM's answers, and the
    gallery_top points of an optional GPS gallery closest to the image in the GPS space."""

    SECTION = "verification"

    method: Literal[METHODS] = Field("verify", description="top1 | verify")
    pool_size: whole(ge=1) = Field(20, description="re-ranked candidates in the pool")
    gallery: text() | None = Field(
        None,
        description="CSV of lat, lon joining the pool, or geoclip (the wheel's 100K gallery); "
        "null: none",
    )
    gallery_top: whole(ge=0) = Field(
        0, description="how many gallery points closest to the image join (with gallery)"
    )

    @model_validator(mode="after")
    def _gallery_and_count_together(self) -> VerificationSettings:
        if bool(self.gallery) != bool(self.gallery_top):
            raise ValueError(
                f"verification.gallery={self.gallery!r} and verification.gallery_top="
                f"{self.gallery_top}: set both (a CSV and how many of its points join the "
                "pool) or neither"
            )
        return self
