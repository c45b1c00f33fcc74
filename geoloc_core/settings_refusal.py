"""A pydantic ValidationError of the settings tree as ONE line: the key path, the value given and
what the key allows, e.g. `params.yaml: train.epochs=2.5: must be an int >= 1`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

PREFIX = "params.yaml: "


class _Hidden:
    """Stands for a value a refusal must not echo (it may be a secret pasted in)."""

    def __repr__(self) -> str:
        return "<not shown>"


HIDDEN = _Hidden()
_BOUNDS = (
    ("minimum", ">="),
    ("exclusiveMinimum", ">"),
    ("maximum", "<="),
    ("exclusiveMaximum", "<"),
)
# Errors whose message is a rule written by hand (a validator's ValueError), not a type check.
_RULE_ERRORS = ("value_error", "assertion_error", "section_keys")


def refusal_line(
    exc: ValidationError, model: type[BaseModel], data: Any, prefix: str = ""
) -> str:
    """The first error of exc, about `data` validated as `model` (prefix: the section's name)."""
    error = exc.errors()[0]
    path, value, owner, name = _walk(model, data, error["loc"], prefix)
    if name and not owner.model_fields[name].repr:
        value = HIDDEN
    if error["type"] == "extra_forbidden":
        parent, _, key = path.rpartition(".")
        if not parent:  # a top-level key of params.yaml
            return f"{PREFIX}unknown section {[key]}; the sections are {list(owner.model_fields)}"
        return f"{PREFIX}{parent}: unknown {[key]}; the keys are {list(owner.model_fields)}"
    if error["type"] == "missing":
        if "." not in path:
            return f"params.yaml has no section '{path}'; add it (see params.schema.json)"
        return f"{PREFIX}{path} is missing; add it (see params.schema.json)"
    if error["type"] in _RULE_ERRORS:
        rule = str(error.get("ctx", {}).get("error", error["msg"]))
        if name:
            return _one_line(f"{PREFIX}{path}={value!r}: {rule}")
        return _one_line(f"{PREFIX}{rule}" if rule.startswith(path) else f"{PREFIX}{path}: {rule}")
    allowed = describe(owner.model_json_schema()["properties"][name]) if name else "a mapping"
    return _one_line(f"{PREFIX}{path}={value!r}: must be {allowed}")


def _walk(
    model: type[BaseModel], data: Any, loc: tuple[Any, ...], prefix: str
) -> tuple[str, Any, type[BaseModel], str | None]:
    """Down the models along loc to the field that failed: its dotted path, the value given for
    it, the model that owns it and its name (None when a whole model failed)."""
    parts = [prefix] if prefix else []
    owner, name, value = model, None, data
    for part in loc:
        if not isinstance(part, str) or part not in owner.model_fields:
            if isinstance(part, str):  # an unknown key
                parts.append(part)
                value = value.get(part) if isinstance(value, Mapping) else None
            break
        parts.append(part)
        value = value.get(part) if isinstance(value, Mapping) else None
        annotation = owner.model_fields[part].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            owner, name = annotation, None
        else:
            name = part
            break
    return ".".join(parts), value, owner, name


def describe(schema: Mapping[str, Any], alone: bool = True) -> str:
    """What a JSON-schema'd field allows, in words: 'an int >= 1', 'one of [...]', ...
    (alone: not one option of several, so a single allowed value reads 'one of [...]')."""
    if "anyOf" in schema:
        return " or ".join(describe(option, alone=False) for option in schema["anyOf"])
    if "enum" in schema:
        return f"one of {schema['enum']}"
    if "const" in schema:
        return f"one of {[schema['const']]}" if alone else repr(schema["const"])
    kind = schema.get("type")
    if kind == "array":
        return _describe_list(schema)
    words = {
        "integer": "an int",
        "number": "a finite number",
        "boolean": "true or false",
        "null": "null",
        "string": "a non-empty string" if schema.get("minLength") else "a string",
    }.get(kind, "a value")
    if "pattern" in schema:
        words += f" matching {schema['pattern']}"
    bounds = [f"{sign} {schema[key]}" for key, sign in _BOUNDS if key in schema]
    return " ".join([words, " and ".join(bounds)]) if bounds else words


def _describe_list(schema: Mapping[str, Any]) -> str:
    if "prefixItems" in schema:
        items = [describe(item) for item in schema["prefixItems"]]
        return f"a list of {len(items)}: [{', '.join(items)}]"
    low, high = schema.get("minItems"), schema.get("maxItems")
    if low is not None and low == high:
        size = f"a list of {low} items"
    elif low == 1:
        size = "a non-empty list"
    elif low:
        size = f"a list of at least {low} items"
    else:
        size = "a list"
    return f"{size}, each {describe(schema.get('items', {}))}"


def _one_line(text: str) -> str:
    return " ".join(text.split())
