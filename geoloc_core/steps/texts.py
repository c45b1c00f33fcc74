"""Step: the reference manifest -> artifacts/texts/place_texts.csv (MP16-Pro-style place texts).

Offline by default: place fields from the source, the missing ones from the offline geocoder,
and a caption from the template. With text.provider openai each row also gets an LMM
description (cached, bounded, retried, budgeted: see text/lmm.py).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from geoloc_core.data.decode import read_image_bytes
from geoloc_core.data.manifest import read_manifest
from geoloc_core.data.schema import PLACE_FIELDS
from geoloc_core.paths import ProjectPaths
from geoloc_core.text.geocoder import OfflineGeocoder
from geoloc_core.text.lmm import LmmDescriber, PlaceQuery, client_from_environment
from geoloc_core.text.place_texts import add_captions, fill_place_fields
from geoloc_core.text.settings import TextSettings
from geoloc_core.text.table import DESCRIPTION, write_place_texts

LMM_CHUNK = 512  # rows whose requests (and images) are held in memory at once
_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


def place_phrase(row: Mapping[str, Any]) -> str:
    """'Paris, Paris, Île-de-France, France, Europe': what the LMM is told of the place."""
    parts = [str(row.get(f, "") or "").strip() for f in PLACE_FIELDS if f != "country_code"]
    return ", ".join(dict.fromkeys(p for p in parts if p))


def _image_mime(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as image:
        return _MIME.get(image.format or "", "application/octet-stream")


def _queries(
    table: pd.DataFrame, manifest: pd.DataFrame, root: Path, send_image: bool
) -> list[PlaceQuery]:
    queries = []
    columns = (table.to_dict("records"), manifest["image"], manifest["lat"], manifest["lon"])
    rows = zip(*columns, strict=True)
    for record, image, lat, lon in rows:
        data = read_image_bytes(root / image) if send_image else None
        mime = _image_mime(data) if data is not None else "image/jpeg"
        queries.append(
            PlaceQuery(record["id"], place_phrase(record), float(lat), float(lon), data, mime)
        )
    return queries


def describe_rows(
    describer: LmmDescriber, table: pd.DataFrame, manifest: pd.DataFrame, root: Path
) -> list[str]:
    """LMM descriptions for every row, a chunk at a time so images never pile up in memory."""
    send_image = describer.settings.send_image
    descriptions: list[str] = []
    for start in range(0, len(table), LMM_CHUNK):
        stop = start + LMM_CHUNK
        chunk = _queries(table.iloc[start:stop], manifest.iloc[start:stop], root, send_image)
        descriptions.extend(describer.describe(chunk))
    return descriptions


def build_place_texts(
    paths: ProjectPaths, text_cfg: Mapping[str, Any], client: Any | None = None
) -> dict[str, Any]:
    """Write the place texts of every reference-manifest row; return counts for tracking.

    client: an OpenAI-compatible client to use instead of one built from the environment.
    """
    settings = TextSettings.from_section(text_cfg)
    lmm = settings.lmm_settings(paths.root)
    manifest = read_manifest(paths.reference_manifest).reset_index(drop=True)
    table, counts = fill_place_fields(manifest, OfflineGeocoder(settings.geocoder))
    table = add_captions(table, settings.caption_template, settings.caption_fallback)
    table[DESCRIPTION] = ""
    lmm_metrics: dict[str, int] = {}
    if lmm is not None:
        describer = LmmDescriber(lmm, client or client_from_environment(lmm))
        table[DESCRIPTION] = describe_rows(describer, table, manifest, paths.root)
        lmm_metrics = describer.stats.as_metrics()
        if settings.caption_from == "description":
            table["caption"] = table[DESCRIPTION]
    write_place_texts(table, paths.place_texts)
    return {
        "rows": len(table),
        "rows_with_city": int((table["city"] != "").sum()),
        **counts,
        **lmm_metrics,
    }
