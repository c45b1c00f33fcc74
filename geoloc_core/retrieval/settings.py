"""Typed `embeddings` and `retrieval` params sections: what the index holds, how many
candidates a query gets."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from geoloc_core.models.variants import RETRIEVAL_PARTS
from geoloc_core.section_model import SectionModel, whole

Part = Literal[RETRIEVAL_PARTS]


class EmbeddingSettings(SectionModel):
    """parts: "auto" (each paper's own: models/variants.py) or a list from RETRIEVAL_PARTS;
    G3's ablation rows IMG, IMG+GPS, IMG+GPS+TEXT are [frozen], [frozen, image_gps],
    [frozen, image_gps, image_text]."""

    SECTION = "embeddings"

    parts: Literal["auto"] | tuple[Part, ...] = Field(
        "auto",
        description="auto = each paper's own (g3: [frozen, image_text, image_gps]; dualgeo: "
        f"[fused_gps, frozen]), or a list of distinct parts from {', '.join(RETRIEVAL_PARTS)} "
        "(model.variant must compute them)",
    )
    batch_size: whole(ge=1) = Field(256, description="vectors per batch")

    @field_validator("parts")
    @classmethod
    def _distinct_parts(cls, parts: str | tuple[str, ...]) -> str | tuple[str, ...]:
        if not isinstance(parts, str) and (not parts or len(set(parts)) != len(parts)):
            raise ValueError(
                f"must be 'auto' or a non-empty list of distinct parts from {list(RETRIEVAL_PARTS)}"
            )
        return parts


class RetrievalSettings(SectionModel):
    """top_k similar candidates per query, and dissimilar_k least similar (G3's negative
    neighbours, found by searching with the negated query)."""

    SECTION = "retrieval"

    top_k: whole(ge=1) = Field(20, description="most similar reference images per query")
    dissimilar_k: whole(ge=0) = Field(
        20, description="least similar reference images per query (G3's negative neighbours)"
    )
