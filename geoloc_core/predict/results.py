"""What a prediction says about one photo, and its JSON form (the CLI's `--json` and the served
model's answer share it, so both give the same document for the same photo)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Where a candidate comes from: a reference image of the index in retrieval order, the same
# re-sorted by DualGeo's clustering, an LMM answer, or a point of the GPS gallery.
SOURCES = ("retrieval", "re-rank", "lmm", "gallery")


@dataclass(frozen=True)
class Place:
    city: str
    state: str
    country: str

    @property
    def label(self) -> str:
        """'city, state, country' as the candidates files write it ("" when unknown)."""
        from geoloc_core.text.place_labels import place_label

        return place_label((self.city, self.state, self.country))

    def as_dict(self) -> dict[str, str]:
        return {"city": self.city, "state": self.state, "country": self.country}


UNKNOWN_PLACE = Place("", "", "")


@dataclass(frozen=True)
class RankedCandidate:
    rank: int  # 1 = the decision
    lat: float
    lon: float
    score: float | None  # what ranks the list: verification cosine (verify) or retrieval cosine
    source: str  # one of SOURCES
    stage: str  # the pool's label: rerank-top1, rerank, lmm-zero-shot, lmm-rag-5, gallery, ...
    place: Place
    decision: bool
    ref_id: str | None = None  # the reference image, for retrieval and re-rank candidates
    retrieval_rank: int | None = None  # 1-based, in the similarity search
    retrieval_score: float | None = None  # cosine of the retrieval embeddings
    verification_score: float | None = None  # cosine in the GPS space (method verify)
    error_km: float | None = None  # geodesic distance to the EXIF position, when there is one
    views: int = 1  # reference images of this place the entry stands for (same_place.py)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "lat": self.lat,
            "lon": self.lon,
            "score": self.score,
            "source": self.source,
            "stage": self.stage,
            "place": self.place.as_dict(),
            "place_name": self.place.label,
            "decision": self.decision,
            "ref_id": self.ref_id,
            "retrieval_rank": self.retrieval_rank,
            "retrieval_score": self.retrieval_score,
            "verification_score": self.verification_score,
            "error_km": self.error_km,
            "views": self.views,
        }


@dataclass(frozen=True)
class Confidence:
    """How sure the decision is: per stated level, the radius (km) around it that holds the
    true location with that probability (calibrated on `calibrated_on`), and the features it
    comes from (geoloc_core/confidence/features.py)."""

    radii: tuple[tuple[float, float], ...]  # (level, radius km), levels ascending
    calibrated_on: str
    spread_km: float
    agreement: float
    margin: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "radii": [{"level": level, "radius_km": km} for level, km in self.radii],
            "calibrated_on": self.calibrated_on,
            "spread_km": self.spread_km,
            "agreement": self.agreement,
            "margin": self.margin,
        }

    def sentence(self) -> str:
        """'within 12 km with 50 % probability, within 840 km with 90 %'."""
        parts = [f"within {km:,.0f} km with {level * 100:g} %" for level, km in self.radii]
        parts[0] += " probability"
        return ", ".join(parts)


@dataclass(frozen=True)
class ExifPosition:
    lat: float | None
    lon: float | None
    note: str  # "" when read; else why there is none (no GPS block, unusable values)

    @property
    def known(self) -> bool:
        return self.lat is not None and self.lon is not None


@dataclass
class PhotoResult:
    image: str  # what the caller named it: a path, or the served model's `name`
    error: str | None = None  # why it has no prediction; None when it has one
    exif: ExifPosition | None = None
    candidates: list[RankedCandidate] = field(default_factory=list)  # ranked, decision first
    decided_by: str = ""  # how the decision was taken (verification, top1, LMM reasoning)
    neighbours: list[str] = field(default_factory=list)  # reference ids, retrieval order
    warning: str | None = None  # far from everything the model knows (far_warning.py)
    confidence: Confidence | None = None  # None: no calibration (or no decision)

    @property
    def decision(self) -> RankedCandidate | None:
        return self.candidates[0] if self.candidates else None

    def listed(self, all_views: bool = False) -> list[RankedCandidate]:
        """The candidates as presented: one entry per place (its best view, with the count of
        views), or every candidate of the pool with all_views."""
        if all_views:
            return list(self.candidates)
        from geoloc_core.predict.same_place import one_per_place  # it imports this module

        return one_per_place(self.candidates)

    def as_dict(self, top_k: int | None = None, all_views: bool = False) -> dict[str, Any]:
        """The JSON form; top_k limits the candidates and neighbours listed (None: all)."""
        listed = self.listed(all_views)
        shown = listed[:top_k] if top_k else listed
        decision = self.decision
        exif = self.exif
        return {
            "image": self.image,
            "error": self.error,
            "lat": decision.lat if decision else None,
            "lon": decision.lon if decision else None,
            "score": decision.score if decision else None,
            "source": decision.source if decision else None,
            "place_name": decision.place.label if decision else None,
            "error_km": decision.error_km if decision else None,
            "decided_by": self.decided_by or None,
            "confidence": self.confidence.as_dict() if self.confidence else None,
            "warning": self.warning,
            "exif_gps": {"lat": exif.lat, "lon": exif.lon} if exif and exif.known else None,
            "exif_note": exif.note if exif and not exif.known else None,
            "candidates": [c.as_dict() for c in shown],
            "candidates_total": len(self.candidates),
            "places_total": len(self.listed()) if all_views else len(listed),
            "neighbours": self.neighbours[:top_k] if top_k else list(self.neighbours),
        }
