"""The report as one self-contained HTML page: inline CSS, pictures as base64 data URIs.

No script, font or style sheet is fetched, so the page reads the same from an MLflow artifact,
an e-mail attachment or a machine without network.
"""

from __future__ import annotations

import base64
from html import escape

from geoloc_core.report.published import MARK
from geoloc_core.report.tables import Figure, ReportDoc, Table

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1500px; padding: 0 1.5em; color: #1d2a36; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #d5dde5; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.86em; }
th, td { border: 1px solid #d5dde5; padding: 0.3em 0.55em; text-align: left; }
th { background: #eef2f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.decision td { font-weight: 600; background: #eaf1fb; }
tr.baseline td { color: #444; }
tr.published td { background: #f6f4ee; color: #555; font-style: italic; }
span.tag { font-size: 0.78em; padding: 0.05em 0.4em; border-radius: 0.3em;
           background: #e8dfc8; color: #5c4a1f; font-style: normal; white-space: nowrap; }
p.note { font-size: 0.85em; color: #555; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #e3e8ee; }
figcaption { font-size: 0.85em; color: #555; }
ul.summary li { margin: 0.15em 0; }
"""


def data_uri(figure: Figure) -> str:
    payload = base64.b64encode(figure.path.read_bytes()).decode("ascii")
    return f"data:image/png;base64,{payload}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def html_table(table: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in table.header)
    body = []
    for row in table.rows:
        cells = []
        for text in row.cells:
            if text == MARK:
                cells.append(f'<td><span class="tag">{escape(text)}</span></td>')
            elif _is_number(text):
                cells.append(f'<td class="num">{escape(text)}</td>')
            else:
                cells.append(f"<td>{escape(text)}</td>")
        body.append(f'<tr class="{row.kind}">{"".join(cells)}</tr>')
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    return (
        f'<table data-title="{escape(table.title)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{note}"
    )


def html_report(doc: ReportDoc) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(doc.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(doc.title)}</h1>",
    ]
    if doc.summary:
        items = "".join(f"<li>{escape(line)}</li>" for line in doc.summary)
        parts.append(f'<ul class="summary">{items}</ul>')
    for section in doc.sections:
        parts.append(f"<section><h2>{escape(section.heading)}</h2>")
        if section.text:
            parts.append(f"<p>{escape(section.text)}</p>")
        parts += [html_table(t) for t in section.tables]
        for figure in section.figures:
            parts.append(
                f'<figure><img alt="{escape(figure.caption)}" src="{data_uri(figure)}">'
                f"<figcaption>{escape(figure.caption)}</figcaption></figure>"
            )
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
