"""Captions from place fields with a template (a param: G3's code uses
"A street view photo taken in {city}, {state}, {country}").

Fields joined only by commas form a list, and an unknown (empty) field is left out of its
list together with its comma, so a place without a state reads "... taken in Hella, Iceland"
rather than "... taken in Hella, , Iceland". When every field of the template is unknown the
fallback caption (also a param) is used, never a sentence that ends in "taken in".
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

_LIST_SEPARATOR = re.compile(r"\s*,\s*")


def template_fields(template: str) -> list[str]:
    """The {names} a template uses; positional or formatted fields are refused."""
    names = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(
                f"caption template field '{{{name}}}' must be a plain name such as {{city}}"
            )
        names.append(name)
    return names


def render_caption(template: str, fields: Mapping[str, str], fallback: str) -> str:
    """The template filled with fields; empty fields and their commas dropped."""
    names = template_fields(template)
    values = {name: str(fields.get(name, "") or "").strip() for name in names}
    if names and not any(values.values()):
        return fallback
    out: list[str] = []
    items: list[str] = []
    separator = ", "

    def flush() -> None:
        out.append(separator.join(v for v in items if v))
        items.clear()

    for literal, name, _, _ in string.Formatter().parse(template):
        if name is not None and items and _LIST_SEPARATOR.fullmatch(literal):
            separator = literal
            items.append(values[name])
            continue
        if items:
            flush()
        out.append(literal)
        if name is not None:
            separator = ", "
            items.append(values[name])
    if items:
        flush()
    return "".join(out).strip()
