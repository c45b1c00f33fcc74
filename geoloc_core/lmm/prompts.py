"""Chat messages (OpenAI format) for the LMM stage's three prompts.

- G3 zero-shot: the query photo and `prompt_zero_shot`.
- G3 RAG: the photo and `prompt_rag` with r similar and r dissimilar neighbour coordinates,
  "(lat, lon), (lat, lon), ..." in retrieval order (G3 lists coordinates only, no names).
- DualGeo: "Photo to locate:" + the query photo, then per re-ranked candidate a caption line
  "Candidate k: (lat, lon), place name. A photo taken there:" and its reference photo, then
  `prompt_dualgeo` with {count} filled in.

Images travel as base64 data URLs with the configured detail. JPEG, PNG, GIF and WebP are sent
as they are (the bytes decide the cache key); anything else Pillow reads is re-encoded as JPEG.
Templates fill only their own {placeholders}: other braces (the JSON example) stay text.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geoloc_core.data.decode import DEFAULT_MAX_PIXELS, decode_rgb, read_image_bytes
from geoloc_core.lmm.settings import PLACEHOLDER, LmmSettings

Messages = list[dict[str, Any]]
QUERY_CAPTION = "Photo to locate:"
CANDIDATE_CAPTION = "Candidate {k}: {point}, {place}. A photo taken there:"
CANDIDATE_NO_PHOTO = "Candidate {k}: {point}, {place}. (No reference photo available.)"
UNKNOWN_PLACE = "place name unknown"
_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


@dataclass(frozen=True)
class Candidate:
    """One re-ranked candidate as DualGeo shows it."""

    lat: float
    lon: float
    place: str
    image_url: str | None  # data URL of its reference photo; None when it cannot be read


def image_mime(data: bytes) -> str | None:
    """The MIME type of a format every OpenAI-compatible server takes, else None."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_data_url(data: bytes) -> str:
    """A data URL of the photo; raises the decoder's error if it is not an image at all."""
    mime = image_mime(data)
    if mime is None:
        buffer = io.BytesIO()
        decode_rgb(data, DEFAULT_MAX_PIXELS).save(buffer, format="JPEG", quality=90)
        data, mime = buffer.getvalue(), "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def load_image_url(location: str | Path) -> str:
    """read_image_bytes (a file or a tar member) as a data URL."""
    return image_data_url(read_image_bytes(location))


def fill(template: str, values: Mapping[str, str]) -> str:
    """Replace {name} for the given names only; every other brace is left as written."""

    def substitute(match: Any) -> str:
        name = match.group(1)
        return values[name] if name in values else match.group(0)

    return PLACEHOLDER.sub(substitute, template)


def format_point(lat: float, lon: float) -> str:
    return f"({lat:.4f}, {lon:.4f})"  # 4 decimals: ~11 m, finer than any threshold


def format_points(points: Sequence[tuple[float, float]]) -> str:
    return ", ".join(format_point(lat, lon) for lat, lon in points)


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _image(url: str, detail: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url, "detail": detail}}


def _user(content: list[dict[str, Any]]) -> Messages:
    return [{"role": "user", "content": content}]


def g3_zero_shot_messages(settings: LmmSettings, image_url: str) -> Messages:
    return _user([_text(settings.prompt_zero_shot), _image(image_url, settings.image_detail)])


def g3_rag_messages(
    settings: LmmSettings,
    image_url: str,
    similar: Sequence[tuple[float, float]],
    dissimilar: Sequence[tuple[float, float]],
) -> Messages:
    prompt = fill(
        settings.prompt_rag,
        {"similar": format_points(similar), "dissimilar": format_points(dissimilar)},
    )
    return _user([_text(prompt), _image(image_url, settings.image_detail)])


def dualgeo_messages(
    settings: LmmSettings, image_url: str, candidates: Sequence[Candidate]
) -> Messages:
    detail = settings.image_detail
    content = [_text(QUERY_CAPTION), _image(image_url, detail)]
    for k, candidate in enumerate(candidates, start=1):
        fields = {
            "k": str(k),
            "point": format_point(candidate.lat, candidate.lon),
            "place": candidate.place.strip() or UNKNOWN_PLACE,
        }
        if candidate.image_url is None:
            content.append(_text(CANDIDATE_NO_PHOTO.format(**fields)))
        else:
            content.append(_text(CANDIDATE_CAPTION.format(**fields)))
            content.append(_image(candidate.image_url, detail))
    content.append(_text(fill(settings.prompt_dualgeo, {"count": str(len(candidates))})))
    return _user(content)


def prompt_text(messages: Messages) -> str:
    """All text parts of the messages joined (what a reader or the test server sees)."""
    parts: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
            continue
        for part in content or []:
            if part.get("type") == "text":
                parts.append(str(part.get("text", "")))
    return "\n".join(parts)
