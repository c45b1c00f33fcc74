"""Checks shared by the typed params sections: every error is one line naming the key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from geoloc_core.params import ParamsError


def strict_values(cls: type, m: Mapping[str, Any], section: str) -> dict[str, Any]:
    """The section's values for cls's fields: all present, nothing unknown, lists as tuples
    (ParamsError, a ValueError, naming what is missing or unknown)."""
    if not isinstance(m, Mapping):
        raise ParamsError(f"params.yaml section '{section}' must be a mapping")
    known = [f.name for f in fields(cls)]
    missing = [name for name in known if name not in m]
    unknown = sorted(set(m) - set(known))
    if missing or unknown:
        raise ParamsError(
            f"params.yaml section '{section}': "
            + (f"missing {missing}; " if missing else "")
            + (f"unknown {unknown}; " if unknown else "")
            + f"the keys are {known}"
        )
    return {k: tuple(v) if isinstance(v, list) else v for k, v in m.items()}


def require_int(key: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{key}={value!r} must be an int >= {minimum}")


def require_positive(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{key}={value!r} must be a number > 0")


def require_choice(key: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{key}={value!r} is not one of {list(allowed)}")


def require_bool(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{key}={value!r} must be true or false")
