"""The `confidence` params section (asset confidence_calibration)."""

from __future__ import annotations

from pydantic import Field, field_validator

from geoloc_core.section_model import SectionModel, real, text, whole


class ConfidenceSettings(SectionModel):
    """How the confidence radii are estimated and calibrated: the features' own settings
    (top_m, agree_km), the stated coverages (levels), and the calibration's shape (groups of
    similar difficulty, cross-fitting folds on the calibration benchmark)."""

    SECTION = "confidence"

    benchmark: text() = Field(
        "validation", description="the benchmark calibrated on (never a test benchmark)"
    )
    levels: tuple[real(gt=0, lt=1), ...] = Field(
        (0.5, 0.9), min_length=1, description="stated coverages, ascending, each in (0, 1)"
    )
    top_m: whole(ge=2) = Field(
        10, description="re-ranked candidates whose spread around the decision is measured"
    )
    agree_km: real(gt=0) = Field(
        25.0, description="a candidate this close to the decision agrees with it (km)"
    )
    groups: whole(ge=1) = Field(
        2, description="groups of equal size by predicted difficulty, each its own radii"
    )
    folds: whole(ge=2) = Field(
        5, description="cross-fitting folds: the calibration benchmark's radii come from "
        "models fitted without the query"
    )

    @field_validator("levels")
    @classmethod
    def _ascending(cls, levels: tuple[float, ...]) -> tuple[float, ...]:
        if list(levels) != sorted(set(levels)):
            raise ValueError("must be ascending, each once")
        return levels
