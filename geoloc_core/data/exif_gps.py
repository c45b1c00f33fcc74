"""The position a camera wrote into a photo's EXIF GPS block, read with Pillow.

GPSLatitude/GPSLongitude are (degrees, minutes, seconds) rationals and the hemisphere is a
separate N/S or E/W reference tag; a photo without both is reported, never placed at (0, 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import ExifTags, Image

_NEGATIVE_REFS = {"S", "W"}
_REFS = {"latitude": {"N", "S"}, "longitude": {"E", "W"}}


@dataclass(frozen=True)
class GpsReading:
    lat: float | None
    lon: float | None
    problem: str  # "" when lat and lon were read


def _degrees(value: Any) -> float:
    """(d, m, s) rationals -> decimal degrees; a bare number is already degrees."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        parts = [float(v) for v in value]
        if len(parts) != 3:
            raise ValueError(f"expected degrees, minutes, seconds, got {len(parts)} values")
        degrees, minutes, seconds = parts
        return degrees + minutes / 60.0 + seconds / 3600.0
    return float(value)


def _ref(raw: Any) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    return str(raw).strip("\x00 ").upper()


def _coordinate(gps: Mapping[int, Any], value_tag: int, ref_tag: int, axis: str) -> float:
    if value_tag not in gps or ref_tag not in gps:
        raise ValueError(f"no GPS {axis}")
    ref = _ref(gps[ref_tag])
    if ref not in _REFS[axis]:
        raise ValueError(f"GPS {axis} reference '{ref}' is not one of {sorted(_REFS[axis])}")
    value = _degrees(gps[value_tag])
    if not math.isfinite(value):
        raise ValueError(f"GPS {axis} is not a number ({gps[value_tag]!r})")
    return -value if ref in _NEGATIVE_REFS else value


def gps_from_exif(image: Image.Image) -> GpsReading:
    """Latitude and longitude from an opened image's EXIF, or the reason there are none."""
    try:
        gps = image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    except Exception as exc:  # Pillow raises many types on malformed EXIF blocks
        return GpsReading(None, None, f"unreadable EXIF ({type(exc).__name__}: {exc})")
    if not gps:
        return GpsReading(None, None, "no GPS position in EXIF")
    try:
        lat = _coordinate(gps, ExifTags.GPS.GPSLatitude, ExifTags.GPS.GPSLatitudeRef, "latitude")
        lon = _coordinate(
            gps, ExifTags.GPS.GPSLongitude, ExifTags.GPS.GPSLongitudeRef, "longitude"
        )
    except (ValueError, TypeError, ZeroDivisionError) as exc:
        return GpsReading(None, None, f"unusable EXIF GPS ({exc})")
    return GpsReading(lat, lon, "")

