"""A reference image's place label, 'city, state, country', from the place texts (MP16-Pro's
fields): how the candidates files and `geoloc predict` name a place."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

PLACE_PARTS = ("city", "state", "country")


def place_label(parts: Iterable[str]) -> str:
    """'city, state, country' without empty or repeated parts ("Singapore" once, not twice)."""
    return ", ".join(dict.fromkeys(v for v in parts if v))


def place_names(place_texts: Path) -> dict[str, str]:
    """id -> 'city, state, country' from the place texts file."""
    table = pd.read_csv(place_texts, dtype=str, keep_default_na=False)
    present = [c for c in PLACE_PARTS if c in table.columns]
    labels = table[present].apply(place_label, axis=1)
    return dict(zip(table["id"], labels, strict=True))
