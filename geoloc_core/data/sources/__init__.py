"""Dataset adapters: every source becomes rows of the one manifest schema.

Reference sets (params data.source): demo, mp16pro, folder. Benchmarks: the demo world's
demo-street and demo-unseen, and im2gps3k and yfcc4k from their own CSV and image folder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from geoloc_core.data.manifest import ManifestError, demo_manifest
from geoloc_core.data.schema import DEMO_BENCHMARKS
from geoloc_core.data.settings import setting
from geoloc_core.data.sources.benchmarks import CSV_BENCHMARKS, benchmark_csv_manifest
from geoloc_core.data.sources.folder import folder_manifest
from geoloc_core.data.sources.mp16pro import mp16pro_manifest

# The reference source's held-out split, evaluated like a benchmark (tuning happens there).
VALIDATION = "validation"


@dataclass(frozen=True)
class SourceRows:
    """A source's rows before validation, and the dataset name the gate's limits refer to."""

    frame: pd.DataFrame
    dataset: str


def _demo(project_root: Path, data_cfg: Mapping[str, Any]) -> pd.DataFrame:
    """The demo world's rows, each with its containment problem ("" for none)."""
    return demo_manifest(project_root / setting(data_cfg, "root", "data"), project_root)


def _demo_reference(project_root: Path, data_cfg: Mapping[str, Any]) -> SourceRows:
    return SourceRows(_demo(project_root, data_cfg), "demo")


def _mp16pro_reference(project_root: Path, data_cfg: Mapping[str, Any]) -> SourceRows:
    frame = mp16pro_manifest(
        project_root / setting(data_cfg, "mp16pro_csv", "data"),
        list(setting(data_cfg, "mp16pro_archives", "data")),
        project_root,
        float(setting(data_cfg, "validation_fraction", "data")),
    )
    return SourceRows(frame, "mp16pro")


def _folder_reference(project_root: Path, data_cfg: Mapping[str, Any]) -> SourceRows:
    folder = project_root / setting(data_cfg, "folder_images", "data")
    fraction = float(setting(data_cfg, "validation_fraction", "data"))
    return SourceRows(folder_manifest(folder, project_root, fraction), "folder")


RowsReader = Callable[[Path, Mapping[str, Any]], SourceRows]
# params data.source -> the reader of its rows (every split)
REFERENCE_READERS: dict[str, RowsReader] = {
    "demo": _demo_reference,
    "mp16pro": _mp16pro_reference,
    "folder": _folder_reference,
}
REFERENCE_SOURCES = tuple(REFERENCE_READERS)


def reference_rows(project_root: Path, data_cfg: Mapping[str, Any]) -> SourceRows:
    """All rows of the reference source named by params data.source (every split)."""
    source = setting(data_cfg, "source", "data")
    if source not in REFERENCE_READERS:
        raise ManifestError(f"params data.source '{source}' is not one of {REFERENCE_SOURCES}")
    return REFERENCE_READERS[source](project_root, data_cfg)


def _validation_rows(project_root: Path, data_cfg: Mapping[str, Any]) -> SourceRows:
    rows = reference_rows(project_root, data_cfg)
    frame = rows.frame[rows.frame["split"] == VALIDATION].reset_index(drop=True)
    return SourceRows(frame, rows.dataset)


def _demo_split(split: str) -> RowsReader:
    def rows(project_root: Path, data_cfg: Mapping[str, Any]) -> SourceRows:
        frame = _demo(project_root, data_cfg)
        return SourceRows(frame[frame["split"] == split].reset_index(drop=True), "demo")

    return rows


def _csv_benchmark(name: str) -> RowsReader:
    def rows(project_root: Path, data_cfg: Mapping[str, Any]) -> SourceRows:
        csv_path = project_root / setting(data_cfg, f"{name}_csv", "data")
        images = project_root / setting(data_cfg, f"{name}_images", "data")
        return SourceRows(benchmark_csv_manifest(name, csv_path, images, project_root), name)

    return rows


# benchmark name -> the reader of its query rows
BENCHMARK_READERS: dict[str, RowsReader] = {
    VALIDATION: _validation_rows,
    **{split: _demo_split(split) for split in DEMO_BENCHMARKS},
    **{name: _csv_benchmark(name) for name in CSV_BENCHMARKS},
}
BENCHMARK_SOURCES = tuple(BENCHMARK_READERS)


def absent_benchmark(project_root: Path, data_cfg: Mapping[str, Any], benchmark: str) -> str:
    """Why a benchmark is skipped: its own data set's CSV does not exist ("" when it does, or
    the benchmark has no file of its own), so a configured but undownloaded benchmark does not
    stop the pipeline. A CSV that exists but is broken is never skipped: reading it fails."""
    if benchmark not in CSV_BENCHMARKS:
        return ""
    csv_key, images_key = f"{benchmark}_csv", f"{benchmark}_images"
    csv_file = str(setting(data_cfg, csv_key, "data"))
    if (project_root / csv_file).exists():
        return ""
    images = setting(data_cfg, images_key, "data")
    return (
        f"{csv_file} does not exist, so benchmark {benchmark} has no data: put "
        f"{Path(csv_file).name} there (params data.{csv_key}) and its photos in {images} "
        f"(params data.{images_key}), record them with `dvc add data/raw` and "
        f"re-materialize benchmark_manifest[{benchmark}]; or remove {benchmark} from params "
        "benchmarks.names"
    )


def benchmark_rows(
    project_root: Path, data_cfg: Mapping[str, Any], benchmark: str
) -> SourceRows:
    """The query rows of one benchmark."""
    if benchmark not in BENCHMARK_READERS:
        raise ManifestError(f"benchmark '{benchmark}' is not one of {BENCHMARK_SOURCES}")
    return BENCHMARK_READERS[benchmark](project_root, data_cfg)
