"""The `data` params section (where the raw data lies, which reference source) and the
`benchmarks` section (which benchmark partitions exist)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from geoloc_core.data.sources import BENCHMARK_SOURCES, REFERENCE_SOURCES
from geoloc_core.section_model import SectionModel, real, text


class DataSettings(SectionModel):
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
    im2gps3k_csv: text() = Field(description="im2gps3k's metadata CSV")
    im2gps3k_images: text() = Field(description="im2gps3k's image folder")
    yfcc4k_csv: text() = Field(description="yfcc4k's metadata CSV")
    yfcc4k_images: text() = Field(description="yfcc4k's image folder")
    folder_images: text() = Field(
        description="source folder: any geotagged photos (GPS from EXIF)"
    )


class BenchmarkSettings(SectionModel):
    """Which benchmark partitions to build and evaluate; validation is the reference source's
    held-out split, evaluated like a benchmark (settings are tuned there)."""

    SECTION = "benchmarks"

    names: tuple[Literal[BENCHMARK_SOURCES], ...] = Field(
        min_length=1,
        description="benchmarks, each once (adding one also needs its metrics file in dvc.yaml)",
    )

    @field_validator("names")
    @classmethod
    def _each_once(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(names)) != len(names):
            raise ValueError("names a benchmark twice")
        return names
