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


@dataclass(frozen=True)
class VariantSpec:
    name: str
    family: str  # "g3" or "dualgeo": which learning rate applies
    embeddings: tuple[str, ...]  # what the model computes; one contrastive term each
    retrieval: tuple[str, ...]  # concatenated (each unit norm, / sqrt(n)) into the FAISS vector
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
        VariantSpec("image-only", "g3", (IMAGE_GPS,), (IMAGE_GPS,), IMAGE_GPS),
        VariantSpec("g3", "g3", (IMAGE_GPS, IMAGE_TEXT), (IMAGE_GPS, IMAGE_TEXT), IMAGE_GPS),
        VariantSpec("dualgeo", "dualgeo", (FUSED_GPS, SEG_GPS), (FUSED_GPS, SEG_GPS), FUSED_GPS),
        VariantSpec(
            "dualgeo+text",
            "dualgeo",
            (FUSED_GPS, SEG_GPS, IMAGE_TEXT),
            (FUSED_GPS, SEG_GPS, IMAGE_TEXT),
            FUSED_GPS,
        ),
    )
}


def variant_spec(name: str) -> VariantSpec:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"model.variant={name!r} is not one of {list(VARIANTS)}") from None
