"""The strict parser of an LMM's coordinate answer: a valid point, or a counted reason to drop it.

What is accepted:
- a JSON object with the keys "latitude" and "longitude" (any letter case), alone, inside
  prose, or inside a ```json code fence; the first flat object that names either key is the
  answer (later ones are not searched for a better one);
- numbers: integers and decimals, and strings that hold a plain decimal number ("48.85",
  "-3", "1e-2"): models quote numbers now and then, and the value is unambiguous. Anything
  else ("48.85 N", "48°51'", true, a list) is unparseable.

What is dropped, never repaired: no such object (unparseable), one of the two keys missing or
null (partial), |latitude| > 90 or |longitude| > 180 (out_of_range: neither half is clipped or
zeroed, and nothing becomes (0, 0)), NaN or infinity (non_finite), blank text (empty), more
than MAX_ANSWER_CHARS characters (too_long: checked before any scanning, so a 10 MB answer
costs nothing; the only pattern used, `{[^{}]*}`, has no nested quantifier and scans in
linear time).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

MAX_ANSWER_CHARS = 16_384  # a JSON answer is ~50 characters; max_tokens bounds honest ones
FLAT_OBJECT = re.compile(r"\{[^{}]*\}")
DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")  # unambiguous: linear
HUGE = 1e300  # a JSON integer too big for a float is out of range, not an OverflowError
LAT_KEY = "latitude"
LON_KEY = "longitude"


class DropReason(StrEnum):
    UNPARSEABLE = "unparseable"
    PARTIAL = "partial"
    OUT_OF_RANGE = "out_of_range"
    NON_FINITE = "non_finite"
    EMPTY = "empty"
    TOO_LONG = "too_long"


@dataclass(frozen=True)
class ParsedAnswer:
    lat: float
    lon: float


@dataclass
class DropCounts:
    """How many answers were dropped, per reason (every reason listed, zeros included)."""

    counts: Counter[DropReason] = field(default_factory=Counter)

    def add(self, reason: DropReason, count: int = 1) -> None:
        self.counts[reason] += count

    def update(self, other: DropCounts) -> None:
        self.counts.update(other.counts)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, int]:
        return {reason.value: int(self.counts[reason]) for reason in DropReason}


class _Invalid(Exception):
    def __init__(self, reason: DropReason) -> None:
        self.reason = reason


def parse_answer(text: str | None) -> ParsedAnswer | DropReason:
    """The point an answer states, or why it cannot be used."""
    if text is None:
        return DropReason.EMPTY
    if len(text) > MAX_ANSWER_CHARS:
        return DropReason.TOO_LONG
    if not text.strip():
        return DropReason.EMPTY
    for match in FLAT_OBJECT.finditer(text):
        obj = _load_object(match.group())
        if obj is None:
            continue
        keys = {key.lower(): key for key in obj if isinstance(key, str)}
        if LAT_KEY not in keys and LON_KEY not in keys:
            continue
        try:
            lat = _coordinate(obj.get(keys.get(LAT_KEY, LAT_KEY)))
            lon = _coordinate(obj.get(keys.get(LON_KEY, LON_KEY)))
        except _Invalid as invalid:
            return invalid.reason
        if lat is None or lon is None:
            return DropReason.PARTIAL
        if not (math.isfinite(lat) and math.isfinite(lon)):
            return DropReason.NON_FINITE
        if abs(lat) > 90.0 or abs(lon) > 180.0:
            return DropReason.OUT_OF_RANGE
        return ParsedAnswer(lat, lon)
    return DropReason.UNPARSEABLE


def _load_object(candidate: str) -> dict | None:
    try:
        obj = json.loads(candidate)
    except (json.JSONDecodeError, RecursionError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def _coordinate(value: object) -> float | None:
    """A float, None for a missing/null value; raises _Invalid for anything else."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise _Invalid(DropReason.UNPARSEABLE)
    if isinstance(value, int):
        return float(value) if abs(value) < HUGE else (HUGE if value > 0 else -HUGE)
    if isinstance(value, float):
        return value  # json gives inf for 1e999 and nan for NaN: non_finite later
    if isinstance(value, str):
        stripped = value.strip()
        if DECIMAL.fullmatch(stripped):
            return float(stripped)  # "1e999" -> inf: non_finite later
        if stripped.lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise _Invalid(DropReason.NON_FINITE)
    raise _Invalid(DropReason.UNPARSEABLE)
