"""Every params section checked when params load, so a bad setting is refused before any asset
runs: one line naming the key and what is allowed (geoloc status, geoloc materialize, and the
Dagster definitions all load through here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geoloc_core.settings_tree import load_tree


def validate_params(params: Mapping[str, Any]) -> None:
    """ParamsError with one line for the first bad setting; nothing when all are sound."""
    load_tree(params)
