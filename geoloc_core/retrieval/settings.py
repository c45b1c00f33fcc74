"""Typed `embeddings` and `retrieval` params sections: what the index holds, how many
candidates a query gets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from geoloc_core.models.variants import RETRIEVAL_PARTS
from geoloc_core.section_fields import require_int, strict_values


@dataclass(frozen=True)
class EmbeddingSettings:
    """parts: "auto" (each paper's own: models/variants.py) or a list from RETRIEVAL_PARTS;
    G3's ablation rows IMG, IMG+GPS, IMG+GPS+TEXT are [frozen], [frozen, image_gps],
    [frozen, image_gps, image_text]."""

    parts: str | tuple[str, ...] = "auto"
    batch_size: int = 256

    def __post_init__(self) -> None:
        require_int("embeddings.batch_size", self.batch_size, 1)
        if self.parts == "auto":
            return
        if isinstance(self.parts, str) or not self.parts:
            raise ValueError(
                f"embeddings.parts={self.parts!r} must be 'auto' or a non-empty list drawn "
                f"from {list(RETRIEVAL_PARTS)}"
            )
        unknown = [p for p in self.parts if p not in RETRIEVAL_PARTS]
        if unknown:
            raise ValueError(f"embeddings.parts: {unknown} not among {list(RETRIEVAL_PARTS)}")

    @classmethod
    def from_section(cls, m: Mapping[str, Any]) -> EmbeddingSettings:
        return cls(**strict_values(cls, m, "embeddings"))


@dataclass(frozen=True)
class RetrievalSettings:
    """top_k similar candidates per query, and dissimilar_k least similar (G3's negative
    neighbours, found by searching with the negated query)."""

    top_k: int = 20
    dissimilar_k: int = 20

    def __post_init__(self) -> None:
        require_int("retrieval.top_k", self.top_k, 1)
        require_int("retrieval.dissimilar_k", self.dissimilar_k, 0)

    @classmethod
    def from_section(cls, m: Mapping[str, Any]) -> RetrievalSettings:
        return cls(**strict_values(cls, m, "retrieval"))
