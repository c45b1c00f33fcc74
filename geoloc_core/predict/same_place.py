"""The presented candidates grouped by place: the reference views of one site listed once.

A site has several reference images (the demo world's views share their coordinates; photos
of one landmark lie within a few hundred metres), so a list of reference images repeats one
answer. A reference candidate within SAME_PLACE_KM of a better-ranked reference candidate
joins that one's place: the best-ranked view stands for it, with the number of views. 1 km is
the metrics' finest threshold (street level), so a grouping never hides a difference the
benchmark scores. LMM answers and gallery points are no views of a site and stand alone. Only
the presentation is grouped: the pool and the decision (its first entry) are untouched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from geoloc_core.predict.results import RankedCandidate

SAME_PLACE_KM = 1.0
EARTH_RADIUS_KM = 6371.0088  # the mean radius: at 1 km the sphere is off by metres


def _km(a: RankedCandidate, b: RankedCandidate) -> float:
    """Great-circle distance (haversine): a few comparisons per candidate, no array needed."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(b.lon - a.lon) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def one_per_place(
    candidates: Sequence[RankedCandidate], radius_km: float = SAME_PLACE_KM
) -> list[RankedCandidate]:
    """The candidates in order, each place once (its best-ranked view, `views` counted),
    numbered again from 1."""
    kept: list[RankedCandidate] = []
    views: list[int] = []
    for candidate in candidates:
        if candidate.ref_id is not None:
            same = next(
                (
                    at
                    for at, place in enumerate(kept)
                    if place.ref_id is not None and _km(place, candidate) <= radius_km
                ),
                None,
            )
            if same is not None:
                views[same] += 1
                continue
        kept.append(candidate)
        views.append(1)
    return [
        replace(place, rank=rank, views=count)
        for rank, (place, count) in enumerate(zip(kept, views, strict=True), start=1)
    ]
