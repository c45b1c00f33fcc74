"""params.yaml: the single source of settings, and the hashes that make staleness follow it."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

PARAMS_FILE = "params.yaml"
ROOT_ENV = "GEOLOC_ROOT"
DVC_ROOT_ENV = "DVC_ROOT"  # set by DVC for every stage command: the workspace it runs in


class ParamsError(ValueError):
    """A missing or malformed setting; the message names the key and the file."""


def find_root(start: Path | None = None) -> Path:
    """The project root: the workspace DVC runs a stage in ($DVC_ROOT), else $GEOLOC_ROOT, else
    the nearest folder upwards holding params.yaml.

    DVC_ROOT comes first because a queued `dvc exp run` runs its stages in a temporary copy of
    the repository while the caller's environment (the Makefile's GEOLOC_ROOT included) still
    names the main workspace: that experiment must read and write its own copy.
    """
    dvc_root = os.environ.get(DVC_ROOT_ENV)
    if dvc_root and (Path(dvc_root) / PARAMS_FILE).is_file():
        return Path(dvc_root).resolve()
    env = os.environ.get(ROOT_ENV)
    if env:
        root = Path(env).resolve()
        if not (root / PARAMS_FILE).is_file():
            raise ParamsError(
                f"{ROOT_ENV}={env} has no {PARAMS_FILE}; point it at the project root"
            )
        return root
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PARAMS_FILE).is_file():
            return folder
    raise ParamsError(
        f"no {PARAMS_FILE} in {here} or any parent; run from the project root or set {ROOT_ENV}"
    )


def load_params(root: Path) -> dict[str, Any]:
    path = Path(root) / PARAMS_FILE
    try:
        loaded = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ParamsError(f"{path} does not exist") from exc
    if not isinstance(loaded, dict):
        raise ParamsError(f"{path} must hold a mapping of sections, got {type(loaded).__name__}")
    return loaded


def section(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    """One section, copied, so callers cannot mutate the shared mapping."""
    if name not in params:
        raise ParamsError(f"params.yaml has no section '{name}'; add it (see docs/settings.md)")
    value = params[name]
    if not isinstance(value, Mapping):
        raise ParamsError(f"params.yaml section '{name}' must be a mapping")
    return json.loads(json.dumps(value))


def canonical_json(value: Any) -> str:
    """Key order and number spelling must not change a hash: 0.001 and 1e-3 are the same."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def sections_hash(params: Mapping[str, Any], names: Iterable[str]) -> str:
    """A short stable digest of the named sections (the part of a code_version that tracks them)."""
    payload = {name: section(params, name) for name in sorted(set(names))}
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:12]
