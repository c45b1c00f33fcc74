"""params.yaml sections as Dagster Config defaults, and code versions that follow the code and
the settings.

Dagster's staleness follows code versions, not run config, so each asset's code version is the
digest of the code its step runs plus a hash of exactly the params sections it reads (both from
the stage registry): editing `evaluation` marks metrics and report stale and nothing upstream,
and editing the re-rank's code marks rerank stale and nothing upstream.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from pydantic import create_model

from geoloc_core.params import section, sections_hash
from geoloc_core.pipeline.code_files import code_digest
from geoloc_core.pipeline.registry import stage_named


def code_version(asset_name: str, params: Mapping[str, Any]) -> str:
    stage = stage_named(asset_name)
    return f"{code_digest(stage.module)}-{sections_hash(params, stage.sections)}"


def _field_type(value: Any) -> Any:
    if isinstance(value, bool):
        return bool
    if isinstance(value, int):
        return int
    if isinstance(value, float):
        return float
    if isinstance(value, list):
        kinds = {type(v) for v in value}
        if kinds <= {int, float} and float in kinds:
            return list[float]
        if kinds == {int}:
            return list[int]
        return list[str]
    if value is None:
        return str | None
    return str


def section_config(class_name: str, section_name: str, values: dict[str, Any]) -> type[dg.Config]:
    """A Config class whose fields and defaults are one params section."""
    fields = {key: (_field_type(value), value) for key, value in values.items()}
    cls = create_model(class_name, __base__=dg.Config, **fields)
    cls.__doc__ = f"Defaults from params.yaml section '{section_name}'."
    return cls


def asset_config(asset_name: str, params: Mapping[str, Any]) -> type[dg.Config]:
    """Config for one asset: a field per params section it reads, defaulting to params.yaml."""
    sections = stage_named(asset_name).sections
    fields: dict[str, Any] = {}
    for name in sections:
        values = section(params, name)
        section_cls = section_config(f"{_camel(name)}Section", name, values)
        fields[name] = (section_cls, section_cls(**values))
    cls = create_model(f"{_camel(asset_name)}Config", __base__=dg.Config, **fields)
    cls.__doc__ = f"Settings of {asset_name}; defaults from params.yaml {sections}."
    return cls


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
