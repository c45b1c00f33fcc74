"""What `geoloc predict` shows of the chain's result: per photo, the pool's candidates best
first with their place names, scores and stages, the decision marked, and how it was made."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from geoloc_core.geo.distance import distance_km
from geoloc_core.inference.decision import Decision
from geoloc_core.inference.pool import SOURCE_GALLERY, CandidatePool
from geoloc_core.predict.places import PlaceNames
from geoloc_core.predict.results import Place, RankedCandidate


@dataclass(frozen=True)
class Located:
    """The inference chain's result for n photos."""

    positions: np.ndarray  # (n, k) re-ranked similar neighbours: rows of the index meta
    scores: np.ndarray  # (n, k) their retrieval cosine
    retrieval_rank: np.ndarray  # (n, k) 0-based rank of each in the similarity search
    clustered: np.ndarray  # (n,) bool: the re-rank found a cluster (its order is the re-rank's)
    pool: CandidatePool
    decision: Decision
    image_gps: np.ndarray  # (n, d) the photos' GPS-aligned embeddings


class CandidateRanking:
    """Ranks and names the chain's candidates; `encode` gives GPS embeddings of (n, 2) degrees
    (the cosine of an LMM answer that decided is shown beside it under method verify)."""

    def __init__(
        self,
        reference_ids: np.ndarray,
        places: PlaceNames,
        encode: Callable[[np.ndarray], np.ndarray],
        method: str,
    ) -> None:
        self.reference_ids = reference_ids
        self.places = places
        self.encode = encode
        self.method = method

    def ranked(self, located: Located) -> list[list[RankedCandidate]]:
        """Per photo, the pool's candidates best first (by verification cosine, or in pool
        order for top1), DualGeo's answer first when it decided."""
        pool, decision = located.pool, located.decision
        k = pool.reranked
        slots_by_row = []
        for row in range(len(pool.valid)):
            slots = np.flatnonzero(pool.valid[row])
            if decision.cosines is not None:
                slots = slots[np.argsort(-decision.cosines[row, slots], kind="stable")]
            slots_by_row.append([int(s) for s in slots])
        # reference images are named from the place texts, other points geocoded in one call
        others = [(row, s) for row, slots in enumerate(slots_by_row) for s in slots if s >= k]
        reasoned = [int(r) for r in np.flatnonzero(decision.by_reasoning)]
        points = [pool.coords[r, s] for r, s in others] + [decision.latlon[r] for r in reasoned]
        geocoded = self.places.of_points(np.array(points).reshape(-1, 2))
        place_of = dict(zip(others, geocoded, strict=False))
        reasoning_cosines = self._cosines(decision.latlon[reasoned], located.image_gps[reasoned])
        ranked = []
        for row, slots in enumerate(slots_by_row):
            ids = self.reference_ids[located.positions[row, [s for s in slots if s < k]]]
            named = iter(self.places.of_references(ids))
            items = [
                self._candidate(located, row, s, next(named) if s < k else place_of[row, s])
                for s in slots
            ]
            ranked.append(items)
        for at, row in enumerate(reasoned):
            lat, lon = (float(v) for v in decision.latlon[row])
            cosine = None if reasoning_cosines is None else float(reasoning_cosines[at])
            answer = RankedCandidate(
                rank=0,
                lat=lat,
                lon=lon,
                score=cosine,
                source="lmm",
                stage=str(decision.source[row]),
                place=geocoded[len(others) + at],
                decision=True,
                verification_score=cosine,
            )
            ranked[row].insert(0, answer)
        return [_numbered(items) for items in ranked]

    def _candidate(self, located: Located, row: int, slot: int, place: Place) -> RankedCandidate:
        pool, decision = located.pool, located.decision
        lat, lon = (float(v) for v in pool.coords[row, slot])
        stage = str(pool.sources[row, slot])
        cosine = None if decision.cosines is None else float(decision.cosines[row, slot])
        chosen = slot == int(decision.chosen[row]) and not decision.by_reasoning[row]
        if slot >= pool.reranked:
            return RankedCandidate(
                rank=0,
                lat=lat,
                lon=lon,
                score=cosine,
                source="gallery" if stage == SOURCE_GALLERY else "lmm",
                stage=stage,
                place=place,
                decision=bool(chosen),
                verification_score=cosine,
            )
        retrieval_score = float(located.scores[row, slot])
        return RankedCandidate(
            rank=0,
            lat=lat,
            lon=lon,
            score=cosine if cosine is not None else retrieval_score,
            source="re-rank" if located.clustered[row] else "retrieval",
            stage=stage,
            place=place,
            decision=bool(chosen),
            ref_id=str(self.reference_ids[located.positions[row, slot]]),
            retrieval_rank=int(located.retrieval_rank[row, slot]) + 1,
            retrieval_score=retrieval_score,
            verification_score=cosine,
        )

    def _cosines(self, latlon: np.ndarray, image_gps: np.ndarray) -> np.ndarray | None:
        """cos(image, point) in the GPS space per row (method verify), else None."""
        if self.method != "verify" or not len(latlon):
            return None
        encoded = self.encode(np.asarray(latlon, np.float64))
        return np.einsum("nd,nd->n", image_gps, encoded).astype(np.float64)


def decided_by(located: Located, row: int) -> str:
    """How the photo's decision was made, in words."""
    decision = located.decision
    if decision.by_reasoning[row]:
        return "DualGeo's LMM reasoning over the re-ranked candidates (lmm.mode dualgeo)"
    if decision.cosines is None:
        return "the first re-ranked candidate (verification.method top1)"
    return (
        "geo-verification: the highest cosine in the GPS space among "
        f"{int(located.pool.valid[row].sum())} candidates (verification.method verify)"
    )


def with_errors(candidates: list[RankedCandidate], lat: float, lon: float) -> list[RankedCandidate]:
    """Each candidate with its geodesic distance (WGS-84, as the metrics) to the EXIF truth."""
    if not candidates:
        return candidates
    km = distance_km(
        np.full(len(candidates), lat),
        np.full(len(candidates), lon),
        np.array([c.lat for c in candidates]),
        np.array([c.lon for c in candidates]),
        "geodesic",
    )
    return [replace(c, error_km=float(d)) for c, d in zip(candidates, km, strict=True)]


def _numbered(items: list[RankedCandidate]) -> list[RankedCandidate]:
    return [replace(item, rank=rank) for rank, item in enumerate(items, start=1)]
