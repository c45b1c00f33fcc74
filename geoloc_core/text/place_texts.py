"""Place fields and captions for manifest rows (MP16-Pro's text side).

Fields the source already has (MP16-Pro ships all of them) are kept as they are; only empty
ones are filled from the offline geocoder.
"""

from __future__ import annotations

import pandas as pd

from geoloc_core.data.schema import PLACE_FIELDS
from geoloc_core.text.captions import render_caption, template_fields
from geoloc_core.text.geocoder import GEOCODED_FIELDS, OfflineGeocoder


def _source_field(manifest: pd.DataFrame, field: str) -> pd.Series:
    if field not in manifest.columns:
        return pd.Series([""] * len(manifest), index=manifest.index, dtype=object)
    return manifest[field].fillna("").astype(str).str.strip()


def fill_place_fields(
    manifest: pd.DataFrame, geocoder: OfflineGeocoder
) -> tuple[pd.DataFrame, dict[str, int]]:
    """id + PLACE_FIELDS per row, and how many values of each field were kept / filled."""
    geocoded = geocoder.geocode(manifest["lat"].to_numpy(), manifest["lon"].to_numpy())
    table = pd.DataFrame({"id": manifest["id"].astype(str).to_numpy()})
    counts: dict[str, int] = {}
    for field in PLACE_FIELDS:
        source = _source_field(manifest, field).to_numpy(dtype=object)
        has = source != ""
        counts[f"kept_{field}"] = int(has.sum())
        if field in GEOCODED_FIELDS:
            filled = geocoded[field].to_numpy(dtype=object)
            table[field] = [s if h else f for s, h, f in zip(source, has, filled, strict=True)]
            counts[f"filled_{field}"] = int(((~has) & (filled != "")).sum())
        else:
            table[field] = source
    return table, counts


def add_captions(table: pd.DataFrame, template: str, fallback: str) -> pd.DataFrame:
    """Insert `caption` after `id`; each distinct combination of fields is rendered once."""
    fields = [f for f in dict.fromkeys(template_fields(template)) if f in table.columns]
    out = table.copy()
    if not fields:
        out.insert(1, "caption", render_caption(template, {}, fallback))
        return out
    keys = list(zip(*(out[f] for f in fields), strict=True))
    rendered = {
        key: render_caption(template, dict(zip(fields, key, strict=True)), fallback)
        for key in dict.fromkeys(keys)
    }
    out.insert(1, "caption", [rendered[key] for key in keys])
    return out
