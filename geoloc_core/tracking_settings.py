"""The `tracking` params section: the MLflow experiment runs are logged to, and its UI."""

from __future__ import annotations

from pydantic import Field

from geoloc_core.section_model import URL, SectionModel, text


class TrackingSettings(SectionModel):
    """Where asset runs are logged (the MLflow resource of the code location)."""

    SECTION = "tracking"

    experiment: text() = Field(description="MLflow experiment name")
    ui_url: URL = Field(description="the MLflow UI that run links point at")
