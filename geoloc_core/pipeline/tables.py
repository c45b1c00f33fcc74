"""Small tables as Markdown for metadata previews (no tabulate needed)."""

from __future__ import annotations

from typing import Any

import pandas as pd


def markdown_preview(frame: pd.DataFrame) -> str:
    """A frame as a Markdown table, cells kept on one line."""

    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join([header, rule, *rows])
