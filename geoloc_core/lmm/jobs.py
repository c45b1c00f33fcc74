"""The prompts to send, one job per (query, source): G3's geo-diversification prompts and
DualGeo's reasoning prompt, for queries given in order with their candidates in memory.

Photos are files (or tar members) of the project, or their bytes (the served model); a job
reads its images only when a worker builds it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from geoloc_core.lmm.prompts import (
    Candidate,
    Messages,
    dualgeo_messages,
    g3_rag_messages,
    g3_zero_shot_messages,
    image_data_url,
    load_image_url,
)
from geoloc_core.lmm.runner import PromptJob
from geoloc_core.lmm.settings import LmmSettings

SOURCE_ZERO_SHOT = "lmm-zero-shot"
SOURCE_DUALGEO = "lmm-dualgeo"

# A photo to send: a file (or tar member) of the project, or its bytes (the served model).
ImageSource = Path | bytes
# A (lat, lon) point in degrees.
Point = tuple[float, float]
# A re-ranked candidate as DualGeo shows it: lat, lon, place name, its reference photo.
ShownCandidate = tuple[float, float, str, Path | None]


def _rag_source(size: int) -> str:
    return SOURCE_ZERO_SHOT if size == 0 else f"lmm-rag-{size}"


@dataclass(frozen=True)
class Tag:
    """Which query and source a prompt's answers belong to (and where they sort)."""

    query_id: str
    source: str
    order: tuple[int, int]  # (query position among the queries, source position)


class Tally:
    """A counter the prompt-building worker threads share."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.count += 1


def g3_jobs(
    settings: LmmSettings,
    query_ids: Sequence[str],
    images: Sequence[ImageSource],
    similar: Sequence[Sequence[Point]],
    dissimilar: Sequence[Sequence[Point]],
) -> tuple[list[PromptJob], Counter[int]]:
    """G3's prompts for queries in order (each with its similar and dissimilar candidates'
    coordinates, retrieval order), and per rag size how many queries were too short for it."""
    jobs: list[PromptJob] = []
    short: Counter[int] = Counter()
    rows = zip(query_ids, images, similar, dissimilar, strict=True)
    for position, (query_id, image, near, far) in enumerate(rows):
        built, skipped = _g3_query_jobs(settings, query_id, image, near, far, position)
        jobs.extend(built)
        short.update(skipped)
    return jobs, short


def _g3_query_jobs(
    settings: LmmSettings,
    query_id: str,
    image: ImageSource,
    similar: Sequence[Point],
    dissimilar: Sequence[Point],
    position: int,
) -> tuple[list[PromptJob], list[int]]:
    """G3's prompts for one query, one per size r in lmm.g3_rag_sizes (r = 0: zero-shot; r > 0:
    the first r similar and r dissimilar coordinates, in retrieval order), and the sizes
    skipped because the query has fewer than r of either. position orders the query's answers
    among the others'."""
    jobs: list[PromptJob] = []
    short: list[int] = []
    for rank, size in enumerate(settings.g3_rag_sizes):
        if size > 0 and (len(similar) < size or len(dissimilar) < size):
            short.append(size)
            continue
        tag = Tag(query_id, _rag_source(size), (position, rank))
        build = _g3_builder(settings, image, list(similar[:size]), list(dissimilar[:size]))
        jobs.append(PromptJob(tag, build))
    return jobs, short


def dualgeo_jobs(
    settings: LmmSettings,
    query_ids: Sequence[str],
    images: Sequence[ImageSource],
    shown: Sequence[Sequence[ShownCandidate] | None],
    unreadable: Tally,
) -> list[PromptJob]:
    """DualGeo's prompt per query, in order; a query whose shown candidates are None (it has
    none) gets no prompt but keeps its position."""
    rows = zip(query_ids, images, shown, strict=True)
    return [
        _dualgeo_query_job(settings, query_id, image, candidates, position, unreadable)
        for position, (query_id, image, candidates) in enumerate(rows)
        if candidates is not None
    ]


def _dualgeo_query_job(
    settings: LmmSettings,
    query_id: str,
    image: ImageSource,
    shown: Sequence[ShownCandidate],
    position: int,
    unreadable: Tally,
) -> PromptJob:
    """DualGeo's prompt for one query: the photo, then the re-ranked candidates shown (lat,
    lon, place name, reference photo or None), most likely first; reference photos that
    cannot be read are counted in unreadable and shown without their photo."""
    tag = Tag(query_id, SOURCE_DUALGEO, (position, 0))
    return PromptJob(tag, _dualgeo_builder(settings, image, list(shown), unreadable))


def _image_url(image: ImageSource) -> str:
    """A data URL of a photo given as a file (or tar member) or as its bytes."""
    return image_data_url(image) if isinstance(image, bytes) else load_image_url(image)


def _g3_builder(
    settings: LmmSettings,
    image: ImageSource,
    similar: list[Point],
    dissimilar: list[Point],
) -> Callable[[], Messages]:
    def build() -> Messages:
        url = _image_url(image)
        if not similar:
            return g3_zero_shot_messages(settings, url)
        return g3_rag_messages(settings, url, similar, dissimilar)

    return build


def _dualgeo_builder(
    settings: LmmSettings,
    image: ImageSource,
    shown: list[ShownCandidate],
    unreadable: Tally,
) -> Callable[[], Messages]:
    def reference_url(path: Path | None) -> str | None:
        try:
            if path is None:
                raise FileNotFoundError("reference id not in the reference manifest")
            return load_image_url(path)
        except Exception:  # the candidate is still shown, with its coordinates and place
            unreadable.add()
            return None

    def build() -> Messages:
        url = _image_url(image)
        candidates = [Candidate(a, b, place, reference_url(ref)) for a, b, place, ref in shown]
        return dualgeo_messages(settings, url, candidates)

    return build
