"""Photos to geolocate: files, folders and glob patterns expanded in a stable order, read into
bytes with a reason for each one that cannot be (missing, a folder, no match), and the
position a camera wrote into their EXIF."""

from __future__ import annotations

import glob
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from geoloc_core.data.decode import describe_failure
from geoloc_core.data.exif_gps import gps_from_exif
from geoloc_core.predict.results import ExifPosition

# What a folder contributes: the files whose names say they are images (others are listed as
# skipped, never silently dropped); a file named explicitly is always tried.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class Photo:
    name: str  # how results and errors name it
    data: bytes = b""
    path: Path | None = None  # the file it was read from; None when sent as bytes
    problem: str = ""  # why it cannot be read; "" when data holds its bytes


@dataclass(frozen=True)
class Expanded:
    photos: list[Photo]  # in order: each argument's files (folders and globs sorted)
    skipped: list[Path]  # files in the folders given that are not named like images


def expand_arguments(arguments: Sequence[str]) -> Expanded:
    """Files as given, folders as the image files inside them (sorted, not recursive), glob
    patterns as their matches (sorted; ** recurses); each file once, in first-seen order."""
    photos: list[Photo] = []
    skipped: list[Path] = []
    seen: set[Path] = set()

    def add(path: Path, name: str) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            photos.append(Photo(name=name, path=path))

    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
            skipped += [p for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
            if not images:
                photos.append(Photo(argument, problem=_no_images(files)))
            for image in images:
                add(image, str(image))
        elif not path.exists() and GLOB_CHARACTERS & set(argument):
            matches = sorted(glob.glob(argument, recursive=True))
            if not matches:
                photos.append(Photo(argument, problem="no file matches this pattern"))
            for match in matches:
                add(Path(match), match)
        else:
            add(path, argument)
    return Expanded(photos, skipped)


def _no_images(files: Sequence[Path]) -> str:
    listed = ", ".join(sorted({p.suffix or p.name for p in files})[:5])
    named = f" (it holds {len(files)} other files: {listed})" if files else ""
    return f"folder has no image files ({', '.join(IMAGE_SUFFIXES)}){named}"


def read_photo(photo: Photo) -> Photo:
    """The photo with its bytes, or with the reason they cannot be read."""
    if photo.problem or photo.data or photo.path is None:
        return photo
    try:
        return Photo(photo.name, photo.path.read_bytes(), photo.path)
    except PermissionError:
        return Photo(photo.name, path=photo.path, problem="cannot read it: permission denied")
    except OSError as exc:
        return Photo(photo.name, path=photo.path, problem=describe_failure(exc))


def exif_position(data: bytes) -> ExifPosition:
    """Where the EXIF GPS block places the photo, or why it does not."""
    try:
        reading = gps_from_exif(Image.open(io.BytesIO(data)))
    except Exception as exc:  # Pillow raises many types on a malformed header
        return ExifPosition(None, None, f"unreadable EXIF ({type(exc).__name__})")
    if reading.problem or reading.lat is None or reading.lon is None:
        return ExifPosition(None, None, reading.problem or "no GPS position in EXIF")
    if not (abs(reading.lat) <= 90 and abs(reading.lon) <= 180):
        return ExifPosition(
            None, None, f"EXIF GPS position ({reading.lat}, {reading.lon}) is out of range"
        )
    return ExifPosition(reading.lat, reading.lon, "")
