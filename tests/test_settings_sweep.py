"""The wrong-kind sweep: every leaf key of params.yaml set to every kind of wrong value that
applies to it (a string for a number, 2.5 for a count, NaN, inf, negatives, empty or
wrong-typed lists, a scalar for a list, unknown choices, null) is refused when params load,
in one line naming the full key path. A few of them also go through `geoloc status` and the
Dagster definitions, the entry points a user meets."""

import copy
import math
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from geoloc_assets.cli import main
from geoloc_assets.definitions import build_definitions
from geoloc_core.params import ParamsError
from geoloc_core.params_check import validate_params
from geoloc_core.settings_tree import SECTIONS
from tests.conftest import REPO

PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
BIN = Path(sys.executable).parent
NOT_A_CHOICE = "no-such-choice"
NOT_A_NAME = "-"  # neither a URL nor an environment variable's name


def leaf_keys(params: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for section, values in params.items():
        for key in values:
            yield section, key


def field_schema(section: str, key: str) -> dict[str, Any]:
    model = SECTIONS[section]
    return model.model_json_schema()["properties"][key]


def options(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(schema.get("anyOf", [schema]))


def kinds(schema: Mapping[str, Any]) -> set[str]:
    """What the key takes: integer, number, boolean, choice, text, pattern, list, null."""
    found = set()
    for option in options(schema):
        if "enum" in option or "const" in option:
            found.add("choice")
            if option.get("type") == "integer":  # text.city_min_population: ints to choose
                found.add("integer")
        elif option.get("type") == "string":
            found.add("pattern" if "pattern" in option else "text")
        else:
            found.add(option.get("type", "any"))
    return found


def wrong_values(section: str, key: str) -> Iterator[tuple[Any, str]]:
    """(value, what is wrong with it) for every wrong kind that applies to the key. Values that
    are genuinely valid for it are not generated; each such rule says why."""
    schema = field_schema(section, key)
    taken = kinds(schema)
    current = PARAMS[section][key]
    if "null" not in taken:  # null is valid where it has a meaning (no gallery, no weights...)
        yield None, "null"
    if taken & {"integer", "number"}:
        yield "abc", "a string for a number"
        yield True, "a bool for a number"
        yield math.nan, "NaN"
        yield math.inf, "inf"
        yield -1, "a negative number"  # every number in params.yaml is a size, rate or count
        yield [], "a list for a number"
    if "integer" in taken:
        yield 2.5, "a fraction for a count"
    if "boolean" in taken:
        yield "abc", "a string for a bool"
        yield 1, "an int for a bool"
    if "choice" in taken and "array" not in taken:
        yield NOT_A_CHOICE, "an unknown choice"
        yield 1, "a number for a choice"
    if "choice" in taken and "array" in taken:  # embeddings.parts: auto or a list
        yield NOT_A_CHOICE, "an unknown choice"
    if "pattern" in taken:
        yield NOT_A_NAME, "a string the key's pattern refuses"
    if taken & {"text", "pattern"}:
        # any other non-empty string is a valid path, name or prompt for these keys
        yield "", "an empty string"
        yield 1, "a number for a string"
        yield ["abc"], "a list for a string"
    if "array" in taken:
        yield from wrong_lists(f"{section}.{key}", schema, current)


# Lists whose order or repetition matters; for the others (model.gps_sigmas, the archive globs)
# any order of valid items is valid.
ASCENDING = {"evaluation.thresholds_km", "manifest.expected_rows_im2gps3k",
             "manifest.expected_rows_yfcc4k"}
DISTINCT = {"evaluation.thresholds_km", "lmm.g3_rag_sizes", "baselines.methods",
            "benchmarks.names", "embeddings.parts"}


def wrong_lists(path: str, schema: Mapping[str, Any], current: Any) -> Iterator[tuple[Any, str]]:
    """Wrong values for a list key (current: its params.yaml value; embeddings.parts's is the
    choice 'auto', its list form is tried with a known part)."""
    current = current if isinstance(current, list) else ["frozen"]
    array = next(option for option in options(schema) if option.get("type") == "array")
    if array.get("minItems", 0) >= 1:
        yield [], "an empty list"
    yield 5, "a scalar for a list"
    yield [{"a": 1}], "a list of mappings"
    yield [None], "a list holding null"
    items = array.get("items") or array.get("prefixItems", [{}])[0]
    if items.get("type") in ("integer", "number"):
        yield ["abc"] * len(current), "a list of strings for numbers"
        yield [math.nan] * len(current), "a list holding NaN"
        yield [-1] * len(current), "a list holding a negative number"
    if items.get("type") == "integer":
        yield [2.5] * len(current), "a list of fractions for counts"
    if "enum" in items or "const" in items:
        yield [NOT_A_CHOICE], "a list holding an unknown choice"
    if "prefixItems" in array:
        yield current[:1], "a list of the wrong length"
    if path in ASCENDING:
        low, high = current[0], current[-1]
        yield [high + 1, low] if low == high else current[::-1], "a list out of order"
    if path in DISTINCT:
        yield [current[0], current[0]], "a list repeating an item"


SWEEP = [
    pytest.param(section, key, value, id=f"{section}.{key}={value!r} ({why})")
    for section, key in leaf_keys(PARAMS)
    for value, why in wrong_values(section, key)
]


def with_value(section: str, key: str, value: Any) -> dict[str, Any]:
    params = copy.deepcopy(PARAMS)
    params[section][key] = value
    return params


def test_the_sweep_covers_every_leaf_key():
    swept = {(section, key) for section, key, _ in (p.values for p in SWEEP)}
    assert swept == set(leaf_keys(PARAMS))
    assert set(PARAMS) == set(SECTIONS)


@pytest.mark.parametrize(("section", "key", "value"), SWEEP)
def test_wrong_kind_is_refused_in_one_line_naming_the_key(section, key, value):
    with pytest.raises(ParamsError) as caught:
        validate_params(with_value(section, key, value))
    line = str(caught.value)
    assert line.startswith(f"params.yaml: {section}.{key}"), line
    assert "\n" not in line


ENTRY_POINT_CASES = [
    ("train", "epochs", 2.5, "params.yaml: train.epochs=2.5: must be an int >= 1"),
    ("model", "gps_sigmas", [], "params.yaml: model.gps_sigmas=[]: must be a non-empty list"),
    ("data", "source", "no-such", "params.yaml: data.source='no-such': must be one of"),
    ("text", "lmm_timeout_s", -1, "params.yaml: text.lmm_timeout_s=-1: must be a finite number"),
]


def write_project(root: Path, section: str, key: str, value: Any) -> None:
    root.mkdir(parents=True, exist_ok=True)
    params = with_value(section, key, value)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.mark.parametrize(("section", "key", "value", "line"), ENTRY_POINT_CASES)
def test_the_definitions_refuse_with_the_line(tmp_path, section, key, value, line):
    write_project(tmp_path, section, key, value)
    with pytest.raises(ParamsError) as caught:
        build_definitions(tmp_path)
    assert str(caught.value).startswith(line)


@pytest.mark.parametrize(("section", "key", "value", "line"), ENTRY_POINT_CASES[:2])
def test_geoloc_status_refuses_with_the_line(tmp_path, section, key, value, line):
    write_project(tmp_path, section, key, value)
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / ".dagster"), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [str(BIN / "geoloc"), "--root", str(tmp_path), "status"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 2
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"geoloc: error: {line}")


@pytest.mark.parametrize(
    ("section", "key", "value", "line"),
    [
        ("benchmarks", "names", 5, "params.yaml: benchmarks.names=5: must be a non-empty list"),
        ENTRY_POINT_CASES[2],
    ],
)
def test_geoloc_materialize_refuses_with_the_line(
    tmp_path, capsys, monkeypatch, section, key, value, line
):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / ".dagster"))
    write_project(tmp_path, section, key, value)
    assert main(["--root", str(tmp_path), "materialize", "--group", "rerank"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"geoloc: error: {line}")


def test_an_unknown_top_level_key_is_refused_in_one_line():
    with pytest.raises(ParamsError) as caught:
        validate_params({**PARAMS, "profile": "demo"})
    assert str(caught.value).startswith("params.yaml: unknown section ['profile']; the sections")
