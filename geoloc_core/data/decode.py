"""Bytes -> an RGB picture, or a short reason why not: real photo collections hold every kind
of broken file, and each must become a per-item error rather than a crashed batch.

Handled: JPEG, PNG, WebP (and whatever else Pillow reads); EXIF orientation; grayscale, 16-bit,
CMYK, palette and alpha images to RGB (alpha is composited over white, so transparent areas do
not turn black); zero-byte, truncated and non-image files; decompression bombs over a pixel
limit, checked from the header before any pixel is decoded.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from geoloc_core.data.locations import TarMember, parse_location
from geoloc_core.data.tar_index import read_member

# Pillow's own default; the manifest gate applies params manifest.max_image_pixels instead.
DEFAULT_MAX_PIXELS = 89_478_485
_WHITE = (255, 255, 255, 255)
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_DIRECT_MODES = frozenset({"1", "L", "P", "CMYK", "YCbCr"})
# Pillow plugins raise many types on malformed data (OSError, SyntaxError, ValueError,
# struct.error, IndexError, EOFError, ...): every one of them is a per-item failure.
DECODE_ERRORS = (Exception,)


class ImageDecodeError(ValueError):
    """One image that cannot be used; str(error) is the reason shown in reports."""


@dataclass(frozen=True)
class ImageProbe:
    """What the manifest gate needs to know about one image without keeping its pixels."""

    width: int
    height: int
    problem: str  # "" when the image decodes

    @property
    def min_side(self) -> int:
        return min(self.width, self.height)


def read_image_bytes(location: str | Path) -> bytes:
    """The raw bytes of a file or tar member (FileNotFoundError if absent)."""
    parsed = parse_location(location)
    if isinstance(parsed, TarMember):
        return read_member(parsed)
    return parsed.read_bytes()


def open_checked(data: bytes, max_pixels: int) -> Image.Image:
    """Identify the image from its header and refuse bombs before decoding any pixel."""
    if not data:
        raise ImageDecodeError("empty file (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise ImageDecodeError("not an image (no decoder recognises the bytes)") from exc
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(f"decompression bomb refused by Pillow ({exc})") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"decompression bomb: {width}x{height} = {width * height} pixels, over the limit "
            f"of {max_pixels} (params manifest.max_image_pixels)"
        )
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Any supported colour mode to 8-bit RGB; an unsupported one is an ImageDecodeError."""
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE)
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I;16") or mode == "I":
        return _sixteen_bit_to_rgb(image)
    if mode in _DIRECT_MODES:
        return image.convert("RGB")
    raise ImageDecodeError(f"unsupported colour mode {mode}")


def _sixteen_bit_to_rgb(image: Image.Image) -> Image.Image:
    values = np.asarray(image).astype(np.int64)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise ImageDecodeError(f"{image.mode} pixels outside the 16-bit range")
    eight_bit = np.round(values / 257.0).astype(np.uint8)
    return Image.fromarray(eight_bit).convert("RGB")  # 2-D uint8 is mode L


def decode_rgb(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Fully decoded RGB picture, upright as the camera's EXIF orientation says."""
    image = open_checked(data, max_pixels)
    try:
        image.load()
    except DECODE_ERRORS as exc:
        raise ImageDecodeError(describe_failure(exc)) from exc
    try:
        upright = ImageOps.exif_transpose(image)
    except DECODE_ERRORS as exc:
        raise ImageDecodeError(f"unreadable EXIF orientation ({exc})") from exc
    return to_rgb(upright)


def probe_image(location: str | Path, max_pixels: int) -> ImageProbe:
    """Decode every byte (at reduced JPEG scale, which still reads all the data) to find
    truncated or corrupt files; report the full-size dimensions."""
    width = height = 0
    try:
        image = open_checked(read_image_bytes(location), max_pixels)
        width, height = image.size
        image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
        image.load()
        to_rgb(image)
    except DECODE_ERRORS as exc:
        return ImageProbe(width, height, describe_failure(exc))
    return ImageProbe(width, height, "")


def describe_failure(exc: BaseException) -> str:
    """A short, stable reason for reports: what went wrong, not a traceback."""
    if isinstance(exc, ImageDecodeError):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return f"file not found ({exc.filename})" if exc.filename else str(exc)
    if isinstance(exc, IsADirectoryError):
        return f"not a file: {exc.filename}"
    message = str(exc)
    if isinstance(exc, OSError) and "truncat" in message.lower():
        return f"truncated image ({message})"
    return f"undecodable image ({type(exc).__name__}: {message})"
