"""Published results of other methods, read from published.csv beside this file.

These numbers were copied from papers (each row names its arXiv id, table and how it was read)
and are never re-run here; the report shows them only next to the benchmark they were measured
on, or in a table of their own, so nobody mistakes them for results of this project.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PUBLISHED_FILE = Path(__file__).with_name("published.csv")
PUBLISHED_THRESHOLDS_KM: tuple[float, ...] = (1, 25, 200, 750, 2500)
PUBLISHED_BENCHMARKS: tuple[str, ...] = ("im2gps3k", "yfcc4k")
MARK = "published, not re-run here"


@dataclass(frozen=True)
class PublishedRow:
    """One method on one benchmark; `printed` keeps each value as the source printed it."""

    method: str
    benchmark: str
    printed: dict[float, str]
    source: str
    via: str

    def accuracy(self, threshold_km: float) -> float | None:
        text = self.printed.get(float(threshold_km))
        return None if text is None else float(text)


def _column(threshold_km: float) -> str:
    return f"acc_{threshold_km:g}km"


def read_published(path: Path = PUBLISHED_FILE) -> tuple[PublishedRow, ...]:
    """Every row of the file, checked: a value must be a percentage and a source is required."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        required = {"method", "benchmark", "source", "via"} | {
            _column(t) for t in PUBLISHED_THRESHOLDS_KM
        }
        missing = required - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path} lacks columns {sorted(missing)}")
        rows = []
        for line, record in enumerate(reader, start=2):
            printed = {}
            for t in PUBLISHED_THRESHOLDS_KM:
                text = record[_column(t)].strip()
                if not 0.0 <= float(text) <= 100.0:
                    raise ValueError(f"{path}:{line}: {_column(t)}={text} is not a percentage")
                printed[float(t)] = text
            if not record["source"].strip():
                raise ValueError(f"{path}:{line}: {record['method']} has no source")
            rows.append(
                PublishedRow(
                    method=record["method"].strip(),
                    benchmark=record["benchmark"].strip().lower(),
                    printed=printed,
                    source=record["source"].strip(),
                    via=record["via"].strip(),
                )
            )
    return tuple(rows)


@lru_cache(maxsize=1)
def published_rows() -> tuple[PublishedRow, ...]:
    return read_published()


def published_for(benchmark: str, rows: Sequence[PublishedRow] | None = None) -> list[PublishedRow]:
    """The published rows measured on this benchmark (none for the demo benchmarks)."""
    return [r for r in (published_rows() if rows is None else rows) if r.benchmark == benchmark]
