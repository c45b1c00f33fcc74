"""The `manifest` params section (the manifest gate's limits), and one dataset's view of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field, create_model, field_validator

from geoloc_core.data.sources.benchmarks import CSV_BENCHMARKS
from geoloc_core.section_model import SectionModel, real, whole

RowRange = tuple[whole(ge=0), whole(ge=0)]


class _ManifestKeys(SectionModel):
    """The gate's limits; expected_rows_<dataset> is [min, max] rows of that dataset."""

    SECTION = "manifest"

    min_image_side: whole(ge=1) = Field(description="shortest image side accepted, px")
    max_quarantine_fraction: real(ge=0, le=1) = Field(
        description="above this the blocking check stops everything downstream"
    )
    max_image_pixels: whole(ge=1) = Field(
        description="larger images are refused as decompression bombs"
    )
    image_check_workers: whole(ge=1) = Field(
        description="threads that decode every image once for the gate"
    )

    @field_validator("*")
    @classmethod
    def _ordered(cls, value: Any, info: Any) -> Any:
        """A row range is [min, max]."""
        if info.field_name.startswith(ROWS_PREFIX) and value is not None and value[0] > value[1]:
            raise ValueError("must be [min, max] with min <= max")
        return value

    def gate(self, dataset: str) -> GateSettings:
        """The limits for one dataset; its row range is expected_rows_<dataset>, if there is one."""
        return GateSettings(
            min_image_side=self.min_image_side,
            max_image_pixels=self.max_image_pixels,
            max_failure_rate=self.max_quarantine_fraction,
            workers=self.image_check_workers,
            expected_rows=getattr(self, f"{ROWS_PREFIX}{dataset}", None),
        )


ROWS_PREFIX = "expected_rows_"
# expected_rows_<name> for each benchmark read from a CSV: the size of a complete copy
ManifestSettings = create_model(
    "ManifestSettings",
    __base__=_ManifestKeys,
    __doc__=_ManifestKeys.__doc__,
    **{
        f"{ROWS_PREFIX}{name}": (
            RowRange | None,
            Field(description=f"[min, max] rows of {name}; null: no known size"),
        )
        for name in CSV_BENCHMARKS
    },
)


@dataclass(frozen=True)
class GateSettings:
    """What the gate checks one dataset's manifest against."""

    min_image_side: int
    max_image_pixels: int
    max_failure_rate: float
    workers: int
    expected_rows: tuple[int, int] | None  # None: the dataset has no known size
