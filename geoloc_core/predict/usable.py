"""Which photos of a request can be predicted: one result per photo, the unusable ones already
carrying their reason, and the pixels of the rest. Shared by the project's predictor and an
imported GeoCLIP, so both refuse a photo the same way and never let one sink the others."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from geoloc_core.data.decode import DECODE_ERRORS, describe_failure
from geoloc_core.predict.photos import Photo, exif_position
from geoloc_core.predict.results import PhotoResult


@dataclass
class UsablePhotos:
    results: list[PhotoResult]  # one per photo, in order
    rows: list[int]  # the photos that decoded
    images: list[Any]  # their pixels as decode gives them, in the order of rows


def usable_photos(
    photos: Sequence[Photo], decode: Callable[[int, Photo], Any]
) -> UsablePhotos:
    """decode(row, photo) gives a photo's pixels (or raises a decode error, kept as its reason);
    a photo that could not be read keeps its own problem; EXIF positions are read as we go."""
    usable = UsablePhotos([PhotoResult(photo.name) for photo in photos], [], [])
    for row, photo in enumerate(photos):
        if photo.problem:
            usable.results[row].error = photo.problem
            continue
        try:
            usable.images.append(decode(row, photo))
        except DECODE_ERRORS as exc:
            usable.results[row].error = describe_failure(exc)
            continue
        usable.rows.append(row)
        usable.results[row].exif = exif_position(photo.data)
    return usable
