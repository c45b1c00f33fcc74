"""Profiles: the full profile is one file of overrides (profiles/full.yaml), switched on and off
in params.yaml by `geoloc profile full|demo`.

params.yaml stays the one file every reader reads (Dagster through the settings tree, DVC's
per-stage `params:`, the `geoloc` CLI), so all three see the same values and `dvc repro` re-runs
exactly the stages whose sections the switch changed. The switch edits text, not a re-dumped
YAML tree: each switched line gets the profile's value and a marker, with the demo's own line
kept above it as a comment, so switching back restores params.yaml byte for byte, comments and
alignment included. The overrides are checked against the same settings models as params.yaml
before anything is written: a key params.yaml lacks is refused by name, a bad value as
params.yaml's would be.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML

from geoloc_core.params import PARAMS_FILE, ParamsError
from geoloc_core.settings_tree import load_tree

PROFILES_DIR = "profiles"
DEMO = "demo"  # params.yaml as committed: no overrides
MARKER = "  # profile {name} (profiles/{name}.yaml)"
DEMO_PREFIX = "# demo: "
_MARKED = re.compile(r"^(?P<indent> *)(?P<line>\S.*)  # profile (?P<name>[\w-]+) \(profiles/")


@dataclass(frozen=True)
class Override:
    """One leaf of a profile: its dotted key and value."""

    key: str
    value: Any


def profile_names(root: Path) -> list[str]:
    return [DEMO, *sorted(p.stem for p in (Path(root) / PROFILES_DIR).glob("*.yaml"))]


def overrides_file(root: Path, name: str) -> Path:
    path = Path(root) / PROFILES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ParamsError(
            f"no profile {name!r}: {path} does not exist (profiles: "
            f"{', '.join(profile_names(root))})"
        )
    return path


def read_overrides(root: Path, name: str) -> list[Override]:
    """The profile's leaves in file order; ParamsError naming a key that is not a leaf of the
    settings or whose value does not fit on one line."""
    path = overrides_file(root, name)
    loaded = yaml.safe_load(path.read_text()) or {}
    if not isinstance(loaded, Mapping):
        raise ParamsError(f"{path}: must hold a mapping of sections")
    overrides = []
    for section, keys in loaded.items():
        if not isinstance(keys, Mapping) or not keys:
            raise ParamsError(f"{path}: {section} must be a mapping of keys to values")
        overrides += [Override(f"{section}.{key}", value) for key, value in keys.items()]
    return overrides


def merged(params: Mapping[str, Any], overrides: list[Override], source: str) -> dict[str, Any]:
    """params with the overrides applied, checked by the settings models; ParamsError naming
    the overrides file and the key when a key is unknown or a value is refused."""
    result = {
        name: dict(keys) if isinstance(keys, Mapping) else keys for name, keys in params.items()
    }
    for override in overrides:
        section, _, key = override.key.partition(".")
        keys = result.get(section)
        if not isinstance(keys, dict):
            raise ParamsError(
                f"{source}: {override.key}: params.yaml has no section {section!r} (sections: "
                f"{', '.join(result)})"
            )
        if key not in keys:
            raise ParamsError(
                f"{source}: {override.key}: unknown key; the keys of {section} are "
                f"{', '.join(keys)}"
            )
        keys[key] = override.value
    try:
        load_tree(result)
    except ParamsError as exc:
        raise ParamsError(f"{source}: {str(exc).removeprefix('params.yaml: ')}") from None
    return result


def active_profile(text: str) -> str:
    """The profile params.yaml's text is switched to (demo when no line carries a marker)."""
    names = {m["name"] for line in text.splitlines() if (m := _MARKED.match(line))}
    if len(names) > 1:
        raise ParamsError(f"{PARAMS_FILE} carries lines of several profiles: {sorted(names)}")
    return names.pop() if names else DEMO


def restore_demo(text: str) -> str:
    """Every switched line back to the demo's line kept above it, byte for byte."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    for number, line in enumerate(lines):
        match = _MARKED.match(line)
        if match is None:
            out.append(line)
            continue
        kept = out.pop() if out else ""
        indent = match["indent"]
        if not kept.startswith(indent + DEMO_PREFIX):
            raise ParamsError(
                f"{PARAMS_FILE} line {number + 1} is switched by profile {match['name']} but the "
                f"line above it is not the demo's ('{indent}{DEMO_PREFIX}...'); restore it from "
                "git (`git checkout params.yaml`)"
            )
        out.append(indent + kept[len(indent) + len(DEMO_PREFIX) :])
    return "".join(out)


def apply_profile(text: str, name: str, overrides: list[Override]) -> str:
    """params.yaml's text (switched to demo) with each override's line switched to name."""
    lines = text.splitlines(keepends=True)
    located = dict(_key_lines(text))
    current = yaml.safe_load(text)
    for override in overrides:
        number = located[override.key]
        line = lines[number]
        indent = line[: len(line) - len(line.lstrip(" "))]
        section, _, key = override.key.partition(".")
        _check_one_line(line, key, override.key, current[section][key])
        newline = "\n" if line.endswith("\n") else ""
        lines[number] = (
            f"{indent}{DEMO_PREFIX}{line[len(indent) :].rstrip(chr(10))}\n"
            f"{indent}{key}: {_flow(override.value, override.key)}"
            f"{MARKER.format(name=name)}{newline}"
        )
    return "".join(lines)


def switch(root: Path, name: str) -> tuple[str, list[Override]]:
    """Switch root's params.yaml to profile name (demo: no overrides); returns (the profile it
    was on, the overrides now in force). Nothing is written when the profile is refused."""
    path = Path(root) / PARAMS_FILE
    text = path.read_text()
    before = active_profile(text)
    demo_text = restore_demo(text)
    overrides: list[Override] = []
    new_text = demo_text
    if name != DEMO:
        source = str(overrides_file(root, name).relative_to(root))
        overrides = read_overrides(root, name)
        expected = merged(yaml.safe_load(demo_text), overrides, source)
        new_text = apply_profile(demo_text, name, overrides)
        if yaml.safe_load(new_text) != expected:  # the text edit must mean the merged tree
            raise ParamsError(f"{source}: switching params.yaml did not give the profile's values")
    if new_text != text:
        path.write_text(new_text)
    return before, overrides


def _key_lines(text: str) -> Iterator[tuple[str, int]]:
    """'section.key' -> its line number (0-based) in params.yaml's text."""
    tree = YAML().load(text)
    for section, keys in tree.items():
        if hasattr(keys, "lc"):
            for key in keys:
                yield f"{section}.{key}", keys.lc.key(key)[0]


def _check_one_line(line: str, key: str, dotted: str, current: Any) -> None:
    """A switched value must sit on its key's line alone (not a block list or folded text):
    that line read alone must give the value params.yaml holds."""
    try:
        parsed = yaml.safe_load(line.strip())
    except yaml.YAMLError:
        parsed = None
    if not isinstance(parsed, dict) or key not in parsed or parsed[key] != current:
        raise ParamsError(
            f"{PARAMS_FILE}: {dotted} spans several lines; a profile can switch one-line values "
            "only (write it on one line in params.yaml)"
        )


def _flow(value: Any, dotted: str) -> str:
    """value as one line of YAML (flow style), read back as the same value."""
    dumped = yaml.safe_dump(value, default_flow_style=True, width=10**9, allow_unicode=True)
    lines = [line for line in dumped.splitlines() if line != "..."]
    if len(lines) != 1 or yaml.safe_load(lines[0]) != value:
        raise ParamsError(f"{dotted}: its value does not fit on one line of params.yaml")
    return lines[0]
