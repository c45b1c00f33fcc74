"""The `rerank` params section, kept apart from the clustering so that params validation
never loads scikit-learn."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from geoloc_core.section_model import SectionModel, real, whole

RERANK_METHODS = ("none", "dbscan")


class RerankSettings(SectionModel):
    """The `rerank` params section; the defaults are DualGeo's."""

    SECTION = "rerank"

    method: Literal[RERANK_METHODS] = Field(
        "dbscan", description="none (keep the retrieval order) | dbscan"
    )
    eps_km: real(gt=0) = Field(50.0, description="DBSCAN neighbourhood radius, great-circle km")
    min_samples: whole(ge=1) = Field(
        2, description="DBSCAN core point: this many candidates within eps, itself included"
    )
