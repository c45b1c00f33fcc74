"""The one base class of every params.yaml section, and the strict field types they share.

A section is pure, frozen data: strict types (no '3' for 3, no true for 1, finite floats),
unknown keys refused, and every key required when it comes from params.yaml (`from_section`).
Building a section directly in code may leave keys at their defaults (the papers' values).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from geoloc_core.params import ParamsError
from geoloc_core.settings_refusal import refusal_line

# Set while a mapping from params.yaml is validated: then every key must be there. (A context
# variable, not pydantic's validation context: the custom __init__ below does not receive that.)
_FROM_PARAMS: ContextVar[bool] = ContextVar("geoloc_from_params", default=False)


@contextmanager
def from_params() -> Iterator[None]:
    """Validation inside this block reads params.yaml mappings: every key required."""
    token = _FROM_PARAMS.set(True)
    try:
        yield
    finally:
        _FROM_PARAMS.reset(token)


def whole(
    ge: int | None = None, le: int | None = None, gt: int | None = None
) -> Any:
    """An int (never a bool, a float or a string) within the given bounds."""
    return Annotated[int, Strict(), Field(ge=ge, le=le, gt=gt)]


def real(
    ge: float | None = None, gt: float | None = None, le: float | None = None,
    lt: float | None = None,
) -> Any:
    """A finite number (an int is accepted and becomes a float) within the given bounds."""
    return Annotated[float, Strict(), Field(ge=ge, gt=gt, le=le, lt=lt, allow_inf_nan=False)]


def number(gt: float | None = None) -> Any:
    """A finite int or float kept as written (its JSON spelling reaches file names and hashes)."""
    return Annotated[int, Strict(), Field(gt=gt)] | Annotated[
        float, Strict(), Field(gt=gt, allow_inf_nan=False)
    ]


def text(pattern: str | None = None) -> Any:
    """A non-empty string (a path, a name, a prompt), optionally matching a pattern."""
    return Annotated[str, Strict(), Field(min_length=1, pattern=pattern)]


def distinct(item: str) -> AfterValidator:
    """A list whose entries each appear once ("names a <item> twice" otherwise)."""

    def once(values: tuple[Any, ...]) -> tuple[Any, ...]:
        if len(set(values)) != len(values):
            raise ValueError(f"names a {item} twice")
        return values

    return AfterValidator(once)


FLAG = Annotated[bool, Strict()]
URL = text(r"^https?://\S+$")


class SectionModel(BaseModel):
    """Base of every section: `from_section(mapping)` is the one way to build one from params."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    SECTION: ClassVar[str]  # the params.yaml key of the section
    ERROR: ClassVar[type[ValueError]] = ParamsError  # what from_section raises

    @model_validator(mode="before")
    @classmethod
    def _every_key_given(cls, data: Any) -> Any:
        if _FROM_PARAMS.get() and isinstance(data, Mapping):
            missing = [name for name in cls.model_fields if name not in data]
            unknown = sorted(str(key) for key in data if key not in cls.model_fields)
            if missing or unknown:
                raise PydanticCustomError(
                    "section_keys",
                    "{missing}{unknown}the keys are {keys}",
                    {
                        "missing": f"missing {missing}; " if missing else "",
                        "unknown": f"unknown {unknown}; " if unknown else "",
                        "keys": list(cls.model_fields),
                    },
                )
        return data

    def __init__(self, **values: Any) -> None:
        """Built in code (defaults allowed): a bad value is refused in one line too. Inside a
        params.yaml validation the error goes on up, so the root names the whole key path."""
        try:
            super().__init__(**values)
        except ValidationError as exc:
            if _FROM_PARAMS.get():
                raise
            raise self.ERROR(refusal_line(exc, type(self), values, self.SECTION)) from None

    @classmethod
    def from_section(cls, mapping: Mapping[str, Any]) -> Any:
        """The section from its params.yaml mapping; cls.ERROR with one line when it is bad."""
        try:
            with from_params():
                return cls.model_validate(mapping)
        except ValidationError as exc:
            raise cls.ERROR(refusal_line(exc, cls, mapping, cls.SECTION)) from None
