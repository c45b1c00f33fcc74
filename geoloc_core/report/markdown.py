"""The report as Markdown: the same tables, pictures linked as files beside it."""

from __future__ import annotations

from pathlib import Path

from geoloc_core.report.tables import ReportDoc, Table


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> str:
    lines = [
        "| " + " | ".join(_cell(h) for h in table.header) + " |",
        "|" + "---|" * len(table.header),
    ]
    for row in table.rows:
        cells = [_cell(c) for c in row.cells]
        if row.kind == "decision":
            cells[0] = f"**{cells[0]}**"
        if row.kind == "published":
            cells[0] = f"*{cells[0]}*"
        lines.append("| " + " | ".join(cells) + " |")
    if table.note:
        lines += ["", f"_{table.note}_"]
    return "\n".join(lines)


def markdown_report(doc: ReportDoc, folder: Path) -> str:
    """Markdown for a file written into `folder` (figure links are relative to it)."""
    out = [f"# {doc.title}", ""]
    out += [f"- {line}" for line in doc.summary]
    for section in doc.sections:
        out += ["", f"## {section.heading}", ""]
        if section.text:
            out += [section.text, ""]
        for table in section.tables:
            out += [markdown_table(table), ""]
        for figure in section.figures:
            out += [f"![{figure.caption}]({figure.path.relative_to(folder).as_posix()})", ""]
    return "\n".join(out).rstrip() + "\n"
