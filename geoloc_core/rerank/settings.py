"""The `rerank` params section, kept apart from the clustering so that params validation
never loads scikit-learn."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from geoloc_core.section_model import SectionModel, real, whole

RERANK_METHODS = ("none", "dbscan", "hdbscan")


class RerankSettings(SectionModel):
    """The `rerank` params section; the defaults are DualGeo's (HDBSCAN is not in the paper:
    DualGeo names a threshold-free clustering as future work)."""

    SECTION = "rerank"

    method: Literal[RERANK_METHODS] = Field(
        "dbscan",
        description="none (keep the retrieval order) | dbscan | hdbscan (no eps to tune)",
    )
    eps_km: real(gt=0) = Field(
        50.0, description="DBSCAN neighbourhood radius, great-circle km (dbscan only)"
    )
    min_samples: whole(ge=1) = Field(
        2,
        description="core point: this many candidates within eps, itself included (dbscan); "
        "the neighbour count, itself included, of the core distance (hdbscan)",
    )
    min_cluster_size: whole(ge=2) = Field(
        2, description="HDBSCAN: the fewest candidates a cluster holds (hdbscan only)"
    )
