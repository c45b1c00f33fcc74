"""Reading one params.yaml key with an error that names it, instead of a bare KeyError."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geoloc_core.params import ParamsError


def setting(cfg: Mapping[str, Any], key: str, section: str) -> Any:
    """cfg[key], or a ParamsError saying which params.yaml key to add."""
    if key not in cfg:
        raise ParamsError(
            f"params.yaml {section}.{key} is missing; add it (docs/data.md lists every data, "
            "manifest and text setting)"
        )
    return cfg[key]
