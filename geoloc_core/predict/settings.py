"""The params sections the predict path reads, validated as the benchmark steps validate them.

These are exactly the sections the served model bundles; the `served_model` asset hashes all but
UPSTREAM_SECTIONS into its code version (geoloc_assets/code_versions.py), so a change to one of them
marks the served model stale. Parsing imports no heavy library: `geoloc predict` refuses a bad
setting at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from geoloc_core.lmm.settings import LmmSettings
from geoloc_core.params import section
from geoloc_core.rerank.settings import RerankSettings
from geoloc_core.retrieval.index_settings import IndexSettings
from geoloc_core.retrieval.settings import RetrievalSettings
from geoloc_core.segmentation.settings import SegmentationSettings
from geoloc_core.text.geocoder import GeocoderSettings
from geoloc_core.text.settings import TextSettings
from geoloc_core.verification.settings import VerificationSettings

# retrieval/index: the search; rerank, lmm, verification: the refinement and the decision;
# segmentation: new photos of the dual-view variants; text: the geocoder of non-reference points
PREDICT_SECTIONS = ("retrieval", "index", "rerank", "lmm", "verification", "segmentation", "text")
# Read, but not hashed into the served model's code version: their changes reach it through
# the content of segmentation_cache (-> alignment_model) and place_texts, as for every other
# asset below those (the rule tests/test_segmentation_assets.py and test_text_staleness.py keep).
UPSTREAM_SECTIONS = ("segmentation", "text")


@dataclass(frozen=True)
class PredictSettings:
    retrieval: RetrievalSettings
    index: IndexSettings
    rerank: RerankSettings
    lmm: LmmSettings
    verification: VerificationSettings
    segmentation: SegmentationSettings
    geocoder: GeocoderSettings
    sections: dict[str, dict[str, Any]]  # the sections as read (what a bundle writes)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> PredictSettings:
        """From params.yaml (or a bundle's copy of it): every predict section present."""
        sections = {name: section(params, name) for name in PREDICT_SECTIONS}
        return cls(
            retrieval=RetrievalSettings.from_section(sections["retrieval"]),
            index=IndexSettings.from_section(sections["index"]),
            rerank=RerankSettings.from_section(sections["rerank"]),
            lmm=LmmSettings.from_section(sections["lmm"]),
            verification=VerificationSettings.from_section(sections["verification"]),
            segmentation=SegmentationSettings.from_section(sections["segmentation"]),
            geocoder=TextSettings.from_section(sections["text"]).geocoder,
            sections=sections,
        )

    @property
    def lmm_active(self) -> bool:
        return self.lmm.provider != "none"

    def summary(self) -> dict[str, Any]:
        """What decided the answers, as the JSON output reports it (never a key)."""
        return {
            "retrieval": {
                "top_k": self.retrieval.top_k,
                "dissimilar_k": self.retrieval.dissimilar_k,
            },
            "rerank": {
                "method": self.rerank.method,
                "eps_km": self.rerank.eps_km,
                "min_samples": self.rerank.min_samples,
            },
            "lmm": {
                "provider": self.lmm.provider,
                "mode": self.lmm.mode,
                "model": self.lmm.model if self.lmm_active else None,
            },
            "verification": {
                "method": self.verification.method,
                "pool_size": self.verification.pool_size,
                "gallery": self.verification.gallery,
                "gallery_top": self.verification.gallery_top,
            },
        }

