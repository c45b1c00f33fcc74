"""The strict coordinate parser: what it accepts, what it drops and why, and that a huge
answer costs nothing."""

from __future__ import annotations

import time

import pytest

from geoloc_core.lmm.answers import (
    MAX_ANSWER_CHARS,
    DropCounts,
    DropReason,
    ParsedAnswer,
    parse_answer,
)


@pytest.mark.parametrize(
    ("text", "point"),
    [
        ('{"latitude": 48.8584, "longitude": 2.2945}', (48.8584, 2.2945)),
        ('  {"latitude":-33.86,"longitude":151.21}\n', (-33.86, 151.21)),
        ('My guess is {"latitude": 35.68, "longitude": 139.69}, Tokyo.', (35.68, 139.69)),
        ('Sure!\n```json\n{"latitude": 40.4, "longitude": -3.7}\n```\n', (40.4, -3.7)),
        ('{"latitude": 52, "longitude": 13}', (52.0, 13.0)),  # integers
        ('{"latitude": "52.52", "longitude": "-13.4"}', (52.52, -13.4)),  # numeric strings
        ('{"Latitude": 1.5, "LONGITUDE": 2.5}', (1.5, 2.5)),  # key case
        ('{"answer": {"latitude": 10, "longitude": 20}}', (10.0, 20.0)),  # nested
        ('{"latitude": 90, "longitude": -180}', (90.0, -180.0)),  # the edges are valid
        ('{"latitude": 1e1, "longitude": 2.5E0}', (10.0, 2.5)),
        ('{"latitude": 1, "longitude": 2} then {"latitude": 3, "longitude": 4}', (1.0, 2.0)),
    ],
)
def test_accepted_answers(text, point):
    assert parse_answer(text) == ParsedAnswer(*point)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (None, DropReason.EMPTY),
        ("", DropReason.EMPTY),
        ("   \n ", DropReason.EMPTY),
        ("I cannot tell where this photo was taken.", DropReason.UNPARSEABLE),
        ("48.85, 2.35", DropReason.UNPARSEABLE),  # no JSON object: not guessed from numbers
        ('{"latitude": 48.85, "longitude": 2.35', DropReason.UNPARSEABLE),  # truncated
        ("{'latitude': 48.85, 'longitude': 2.35}", DropReason.UNPARSEABLE),  # not JSON
        ('{"lat": 48.85, "lon": 2.35}', DropReason.UNPARSEABLE),  # other key names
        ('{"latitude": "48.85 N", "longitude": "2.35 E"}', DropReason.UNPARSEABLE),
        ('{"latitude": true, "longitude": 2}', DropReason.UNPARSEABLE),
        ('{"latitude": [48.8], "longitude": 2}', DropReason.UNPARSEABLE),
        ('{"latitude": 48.85}', DropReason.PARTIAL),
        ('{"longitude": 2.35}', DropReason.PARTIAL),
        ('{"latitude": null, "longitude": 2.35}', DropReason.PARTIAL),
        ('{"latitude": 91.0, "longitude": 2.35}', DropReason.OUT_OF_RANGE),
        ('{"latitude": 48.85, "longitude": -180.5}', DropReason.OUT_OF_RANGE),
        ('{"latitude": 1' + "0" * 400 + ', "longitude": 0}', DropReason.OUT_OF_RANGE),
        ('{"latitude": NaN, "longitude": 2.35}', DropReason.NON_FINITE),
        ('{"latitude": 48.85, "longitude": Infinity}', DropReason.NON_FINITE),
        ('{"latitude": 1e999, "longitude": 2}', DropReason.NON_FINITE),
        ('{"latitude": "nan", "longitude": 2}', DropReason.NON_FINITE),
        ("x" * (MAX_ANSWER_CHARS + 1), DropReason.TOO_LONG),
    ],
)
def test_dropped_answers(text, reason):
    assert parse_answer(text) is reason


def test_out_of_range_is_never_clipped_or_zeroed():
    """One bad half drops the whole answer: no (0, lon), no (lat, 0), no (0, 0)."""
    for text in ('{"latitude": 123.4, "longitude": 2.35}', '{"latitude": 0, "longitude": 999}'):
        assert not isinstance(parse_answer(text), ParsedAnswer)


@pytest.mark.parametrize(
    "text",
    [
        "{" * 10_000_000,
        '{"latitude": ' + "1" * 10_000_000,
        ("{" + "a" * 999) * 10_000,
        '{"latitude": "' + "1" * (MAX_ANSWER_CHARS - 40) + 'x", "longitude": 1}',
        "{" * (MAX_ANSWER_CHARS - 1),
        '{"a": 1}' * (MAX_ANSWER_CHARS // 8),
    ],
)
def test_huge_or_adversarial_answers_are_fast(text):
    start = time.perf_counter()
    assert not isinstance(parse_answer(text), ParsedAnswer)
    assert time.perf_counter() - start < 0.5


def test_drop_counts_list_every_reason():
    counts = DropCounts()
    for text in ("", "nonsense", '{"latitude": 95, "longitude": 0}', "nonsense"):
        result = parse_answer(text)
        assert isinstance(result, DropReason)
        counts.add(result)
    assert counts.total == 4
    assert counts.as_dict() == {
        "unparseable": 2,
        "partial": 0,
        "out_of_range": 1,
        "non_finite": 0,
        "empty": 1,
        "too_long": 0,
    }
