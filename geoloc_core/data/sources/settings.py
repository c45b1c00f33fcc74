"""The `data` params section (where the raw data lies, which reference source) and the
`benchmarks` section (which benchmark partitions exist)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, create_model

from geoloc_core.data.sources import BENCHMARK_SOURCES, REFERENCE_SOURCES
from geoloc_core.data.sources.benchmarks import CSV_BENCHMARKS
from geoloc_core.section_model import SectionModel, distinct, real, text


class _DataKeys(SectionModel):
    """Raw input data (versioned by data.dvc); paths are relative to the project root."""

    SECTION = "data"

    root: text() = Field(description="the demo world's folder (source demo)")
    source: Literal[REFERENCE_SOURCES] = Field(description="reference set: demo | mp16pro | folder")
    validation_fraction: real(ge=0, lt=1) = Field(
        description="mp16pro / folder: share of ids (by id hash) held out"
    )
    mp16pro_csv: text() = Field(description="MP16-Pro's metadata CSV")
    mp16pro_archives: tuple[text(), ...] = Field(
        min_length=1, description="globs of MP16-Pro's image archives (uncompressed tar)"
    )
    folder_images: text() = Field(
        description="source folder: any geotagged photos (GPS from EXIF)"
    )


def _benchmark_files() -> dict[str, Any]:
    """<name>_csv and <name>_images for each benchmark read from a CSV and an image folder."""
    fields: dict[str, Any] = {}
    for name in CSV_BENCHMARKS:
        fields[f"{name}_csv"] = (text(), Field(description=f"{name}'s metadata CSV"))
        fields[f"{name}_images"] = (text(), Field(description=f"{name}'s image folder"))
    return fields


DataSettings = create_model(
    "DataSettings", __base__=_DataKeys, __doc__=_DataKeys.__doc__, **_benchmark_files()
)


class BenchmarkSettings(SectionModel):
    """Which benchmark partitions to build and evaluate; validation is the reference source's
    held-out split, evaluated like a benchmark (settings are tuned there)."""

    SECTION = "benchmarks"

    names: Annotated[tuple[Literal[BENCHMARK_SOURCES], ...], distinct("benchmark")] = Field(
        min_length=1,
        description="benchmarks, each once (then `geoloc dvc-yaml` adds its metrics to dvc.yaml)",
    )
