"""The `baselines` params section, kept apart from the baselines themselves so that params
validation never loads the image stack."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from geoloc_core.baselines import METHODS
from geoloc_core.section_fields import strict_values

MAX_IMAGE_SIZE = 1024


@dataclass(frozen=True)
class BaselineSettings:
    """The `baselines` params section; every key required, none unknown."""

    methods: tuple[str, ...]  # which baselines to compute, in this order
    seed: int  # seeds the random baseline
    image_size: int  # raw_pixels: images resized to this square side before the features
    batch_size: int  # images (or cache rows) per batch over queries and reference set

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> BaselineSettings:
        values = strict_values(cls, section, "baselines")
        if not isinstance(values["methods"], tuple):
            raise ValueError(
                f"baselines.methods={values['methods']!r} must be a list of {list(METHODS)}"
            )
        return cls(**values)

    def __post_init__(self) -> None:
        if not self.methods:
            raise ValueError(f"baselines.methods is empty: list some of {list(METHODS)}")
        for method in self.methods:
            if method not in METHODS:
                raise ValueError(
                    f"baselines.methods: {method!r} is not a baseline; allowed: {list(METHODS)}"
                )
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"baselines.methods={list(self.methods)} names a baseline twice")
        _whole("seed", self.seed, 0, 2**63 - 1)
        _whole("image_size", self.image_size, 2, MAX_IMAGE_SIZE)
        _whole("batch_size", self.batch_size, 1, 1_000_000)


def _whole(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"baselines.{name}={value!r} must be a whole number in [{low}, {high}]")
