"""Open every image once, so the expectations can judge decodability and size per row."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path

from geoloc_core.data.decode import ImageProbe, probe_image

_CHUNK = 4096  # bounded number of pending futures, whatever the manifest's size


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def probe_locations(
    locations: Sequence[str], project_root: Path, max_pixels: int, workers: int
) -> list[ImageProbe | None]:
    """One probe per location; None where the location is "" (nothing to open).

    Pillow releases the GIL while decoding, so threads use several cores.
    """

    def probe(location: str) -> ImageProbe | None:
        if not location:
            return None
        return probe_image(project_root / location, max_pixels)

    results: list[ImageProbe | None] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for chunk in _chunks(locations, _CHUNK):
            results.extend(pool.map(probe, chunk))
    return results
