"""The `evaluation` params section: the accuracy thresholds and the distance they use."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from geoloc_core.geo.distance import DISTANCE_METHODS
from geoloc_core.section_model import SectionModel, number


class EvaluationSettings(SectionModel):
    """How predictions are scored (assets metrics, baselines, report)."""

    SECTION = "evaluation"

    thresholds_km: tuple[number(gt=0), ...] = Field(
        min_length=1,
        description="accuracy within each distance, km, ascending (kept as written)",
    )
    distance: Literal[DISTANCE_METHODS] = Field(description="geodesic or haversine")

    @field_validator("thresholds_km")
    @classmethod
    def _ascending(cls, thresholds: tuple[float, ...]) -> tuple[float, ...]:
        if list(thresholds) != sorted(set(thresholds)):
            raise ValueError("must be ascending numbers > 0, each once")
        return thresholds
