"""The assets' Dagster Config, built from the settings tree: one field per params section the
asset reads, each a dg.Config counterpart of the section's model (its fields, descriptions and
constraints; defaults from params.yaml), so the launchpad shows typed, described fields.

What dagster 1.13's Config takes (tried): str Literals (shown as an enum), X | None, lists of
int/float/str/bool, and pydantic constraints in Annotated (kept, though the launchpad does not
show them); it refuses tuples, int Literals, unions of several kinds and lists of Literals. So
a field takes the closest type Dagster knows (a tuple a list, an int choice an int, a union Any)
and every section config first runs its section model's validation: a bad run config value is
refused with the same one line as the same value in params.yaml, before the asset's body
starts. Dagster itself refuses a value of the wrong scalar kind ('abc' for a float) when it
checks the run config, naming the field's path.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import dagster as dg
from pydantic import Field, Strict, create_model, model_validator
from pydantic.fields import FieldInfo

from geoloc_core.params import section
from geoloc_core.section_model import SectionModel
from geoloc_core.settings_tree import SECTIONS

_SCALARS = (bool, int, float, str)


class RunConfigRefused(Exception):
    """A run config value the settings tree refuses; the message is the one line params.yaml's
    check gives. Not a ValueError, so pydantic passes it on as it is instead of wrapping it."""


def asset_config(
    asset_name: str, section_names: Sequence[str], params: Mapping[str, Any]
) -> type[dg.Config]:
    """Config for one asset: a field per section it reads, defaulting to params.yaml's values."""
    fields: dict[str, Any] = {}
    for name in section_names:
        config_cls = section_config(SECTIONS[name], section(params, name))
        fields[name] = (
            config_cls,
            Field(config_cls(), description=_first_line(SECTIONS[name].__doc__) or name),
        )
    cls = create_model(f"{_camel(asset_name)}Config", __base__=dg.Config, **fields)
    cls.__doc__ = f"Settings of {asset_name}; defaults from params.yaml {list(section_names)}."
    return cls


def section_config(model: type[SectionModel], values: Mapping[str, Any]) -> type[dg.Config]:
    """The dg.Config counterpart of one section model, its defaults the given section values."""
    fields = {
        name: (_dagster_type(info), _field(info, values[name]))
        for name, info in model.model_fields.items()
    }
    cls = create_model(
        f"{model.__name__}Config",
        __base__=dg.Config,
        __validators__={"_as_the_section_model": _section_check(model, values)},
        **fields,
    )
    cls.__doc__ = f"params.yaml section '{model.SECTION}' (defaults: its values there)."
    return cls


def _section_check(model: type[SectionModel], defaults: Mapping[str, Any]) -> Any:
    """A before-validator: the values (defaults filled in) must pass the section's model."""

    def check(cls: type, data: Any) -> Any:
        if isinstance(data, Mapping):
            try:
                model.from_section({**defaults, **data})
            except ValueError as exc:  # ParamsError, or the section's own error type
                raise RunConfigRefused(str(exc)) from None
        return data

    return model_validator(mode="before")(classmethod(check))


def _field(info: FieldInfo, default: Any) -> Any:
    return Field(default, description=info.description)


def _dagster_type(info: FieldInfo) -> Any:
    """The closest type Dagster's config accepts, keeping the model's constraints."""
    constraints = [m for m in info.metadata if not isinstance(m, Strict)]
    base = _plain(info.annotation)
    return Annotated[(base, *constraints)] if constraints and base in _SCALARS else base


def _plain(annotation: Any) -> Any:
    """int/float/str/bool, a str Literal, list[scalar], X | None, or Any for what Dagster lacks
    (unions of several kinds, int choices stay int)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _plain(get_args(annotation)[0])
    if origin is Literal:
        kinds = {type(value) for value in get_args(annotation)}
        return annotation if kinds == {str} else kinds.pop() if len(kinds) == 1 else Any
    if origin in (Union, types.UnionType):
        options = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(options) == 1:
            return _plain(options[0]) | None
        return Any
    if origin in (tuple, list):
        items = {_scalar(arg) for arg in get_args(annotation) if arg is not Ellipsis}
        return list[items.pop()] if len(items) == 1 and None not in items else Any
    return annotation if annotation in _SCALARS else Any


def _scalar(annotation: Any) -> Any:
    plain = _plain(annotation)
    if get_origin(plain) is Literal:
        return type(get_args(plain)[0])
    return plain if plain in _SCALARS else None


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n")[0]


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))

