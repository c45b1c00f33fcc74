"""The place_texts file: its columns, and reading and writing it (no heavy imports, so any
step can read it cheaply).

Columns: PLACE_TEXT_COLUMNS (id, caption and MP16-Pro's place fields, "" where unknown), then
`description`, the LMM's text ("" when params text.provider is none).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from geoloc_core.data.schema import PLACE_FIELDS

PLACE_TEXT_COLUMNS = ("id", "caption", *PLACE_FIELDS)
DESCRIPTION = "description"
ALL_COLUMNS = (*PLACE_TEXT_COLUMNS, DESCRIPTION)


def write_place_texts(table: pd.DataFrame, path: Path) -> None:
    """Atomic CSV with exactly ALL_COLUMNS, so identical content gives identical bytes."""
    missing = [c for c in ALL_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"place texts lack columns {missing}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    table[list(ALL_COLUMNS)].to_csv(tmp, index=False, lineterminator="\n")
    tmp.replace(path)


def read_place_texts(path: Path) -> pd.DataFrame:
    """The place texts, every column as text and unknown fields as "" (never NaN)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: materialize the place_texts asset first")
    return pd.read_csv(path, dtype=str, keep_default_na=False)
