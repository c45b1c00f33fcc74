"""The four model variants: which views each uses, which losses it trains, what it retrieves with.

One table, so training, indexing and querying can never disagree on what a variant embeds.
"""

from __future__ import annotations

from dataclasses import dataclass

# Embedding names. Every one but image_text lives in the GPS-aligned space.
IMAGE_GPS = "image_gps"  # image head -> GPS space (G3's image-GPS alignment)
IMAGE_TEXT = "image_text"  # image head -> text space (G3's image-text alignment)
FUSED_GPS = "fused_gps"  # image x segmentation cross-attention -> GPS space (DualGeo)
SEG_GPS = "seg_gps"  # segmentation tokens alone -> GPS space (DualGeo's seg-GPS term)
FROZEN = "frozen"  # the frozen backbone's own pooled image embedding (no training)

# Retrieval parts every variant offers: computed from the cached backbone outputs alone, with no
# trained head (how each is computed: models/alignment.py, BATCH_PARTS).
BATCH_PARTS = (FROZEN,)
# What a retrieval vector can be made of (params embeddings.parts): a batch part, or any
# embedding a variant computes.
RETRIEVAL_PARTS = (*BATCH_PARTS, IMAGE_GPS, IMAGE_TEXT, FUSED_GPS, SEG_GPS)


@dataclass(frozen=True)
class VariantSpec:
    name: str
    family: str  # "g3" or "dualgeo": which learning rate applies
    embeddings: tuple[str, ...]  # what the model computes; one contrastive term each
    retrieval: tuple[str, ...]  # default embeddings.parts: each unit norm, concatenated, / sqrt(n)
    gps_aligned: str  # the embedding compared with candidate GPS embeddings (geo-verification)

    @property
    def uses_text(self) -> bool:
        return IMAGE_TEXT in self.embeddings

    @property
    def uses_segmentation(self) -> bool:
        return SEG_GPS in self.embeddings


VARIANTS: dict[str, VariantSpec] = {
    spec.name: spec
    for spec in (
        # Retrieval defaults follow each paper's code: G3 indexes [CLIP | image->text |
        # image->GPS], DualGeo [fused | raw CLIP]; the frozen embedding is never left out.
        VariantSpec("image-only", "g3", (IMAGE_GPS,), (FROZEN, IMAGE_GPS), IMAGE_GPS),
        VariantSpec(
            "g3", "g3", (IMAGE_GPS, IMAGE_TEXT), (FROZEN, IMAGE_TEXT, IMAGE_GPS), IMAGE_GPS
        ),
        VariantSpec("dualgeo", "dualgeo", (FUSED_GPS, SEG_GPS), (FUSED_GPS, FROZEN), FUSED_GPS),
        VariantSpec(
            "dualgeo+text",
            "dualgeo",
            (FUSED_GPS, SEG_GPS, IMAGE_TEXT),
            (FUSED_GPS, FROZEN, IMAGE_TEXT),
            FUSED_GPS,
        ),
    )
}


def variant_spec(name: str) -> VariantSpec:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"model.variant={name!r} is not one of {list(VARIANTS)}") from None


def retrieval_parts(variant: str, parts: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """embeddings.parts resolved for a variant: "auto" is the paper's default; anything else must
    be parts the variant computes (or the frozen embedding), each once."""
    spec = variant_spec(variant)
    if parts == "auto":
        return spec.retrieval
    if isinstance(parts, str) or not parts:
        raise ValueError(
            f"embeddings.parts={parts!r} must be 'auto' or a non-empty list drawn from "
            f"{list(RETRIEVAL_PARTS)}"
        )
    chosen = tuple(parts)
    unknown = [p for p in chosen if p not in RETRIEVAL_PARTS]
    if unknown:
        raise ValueError(f"embeddings.parts: unknown {unknown}; allowed {list(RETRIEVAL_PARTS)}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"embeddings.parts={list(chosen)} names a part twice")
    available = (*BATCH_PARTS, *spec.embeddings)
    absent = [p for p in chosen if p not in available]
    if absent:
        raise ValueError(
            f"embeddings.parts: model.variant={variant!r} does not compute {absent}; "
            f"it offers {list(available)}"
        )
    return chosen
