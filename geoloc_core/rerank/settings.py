"""The `rerank` params section, kept apart from the clustering so that params validation
never loads scikit-learn."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from geoloc_core.section_fields import strict_values

RERANK_METHODS = ("none", "dbscan")


@dataclass(frozen=True)
class RerankSettings:
    """The `rerank` params section; the defaults are DualGeo's."""

    method: str = "dbscan"  # none (keep the retrieval order) | dbscan
    eps_km: float = 50.0  # DBSCAN neighbourhood radius, great-circle km
    min_samples: int = 2  # DBSCAN core point: this many candidates within eps, itself included

    @classmethod
    def from_section(cls, m: Mapping[str, Any]) -> RerankSettings:
        """Build from params.yaml's `rerank` section: every key present, no unknown key."""
        return cls(**strict_values(cls, m, "rerank"))

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or self.method not in RERANK_METHODS:
            raise ValueError(f"rerank.method={self.method!r} is not one of {list(RERANK_METHODS)}")
        eps = self.eps_km
        if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps > 0:
            raise ValueError(f"rerank.eps_km={eps!r} must be a number > 0")
        if not math.isfinite(eps):
            raise ValueError(f"rerank.eps_km={eps!r} must be a finite number > 0")
        samples = self.min_samples
        if isinstance(samples, bool) or not isinstance(samples, numbers.Integral) or samples < 1:
            raise ValueError(f"rerank.min_samples={samples!r} must be an integer >= 1")
