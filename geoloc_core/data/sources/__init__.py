"""Dataset adapters: every source becomes rows of the one manifest schema.

Reference sets (params data.source): demo, mp16pro, folder. Benchmarks: the demo world's
demo-street and demo-unseen, and im2gps3k and yfcc4k from their own CSV and image folder.
"""

from __future__ import annotations

from collections.abc import Mapping
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

REFERENCE_SOURCES = ("demo", "mp16pro", "folder")
# The reference source's held-out split, evaluated like a benchmark (tuning happens there).
VALIDATION = "validation"
BENCHMARK_SOURCES = (VALIDATION, *DEMO_BENCHMARKS, *CSV_BENCHMARKS)


@dataclass(frozen=True)
class SourceRows:
    """A source's rows before validation, and the dataset name the gate's limits refer to."""

    frame: pd.DataFrame
    dataset: str


def _demo(project_root: Path, data_cfg: Mapping[str, Any]) -> pd.DataFrame:
    """The demo world's rows, each with its containment problem ("" for none)."""
    return demo_manifest(project_root / setting(data_cfg, "root", "data"), project_root)


def reference_rows(project_root: Path, data_cfg: Mapping[str, Any]) -> SourceRows:
    """All rows of the reference source named by params data.source (every split)."""
    source = setting(data_cfg, "source", "data")
    if source == "demo":
        return SourceRows(_demo(project_root, data_cfg), "demo")
    fraction = float(setting(data_cfg, "validation_fraction", "data"))
    if source == "mp16pro":
        frame = mp16pro_manifest(
            project_root / setting(data_cfg, "mp16pro_csv", "data"),
            list(setting(data_cfg, "mp16pro_archives", "data")),
            project_root,
            fraction,
        )
        return SourceRows(frame, "mp16pro")
    if source == "folder":
        folder = project_root / setting(data_cfg, "folder_images", "data")
        return SourceRows(folder_manifest(folder, project_root, fraction), "folder")
    raise ManifestError(f"params data.source '{source}' is not one of {REFERENCE_SOURCES}")


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
    if benchmark == VALIDATION:
        rows = reference_rows(project_root, data_cfg)
        frame = rows.frame[rows.frame["split"] == VALIDATION].reset_index(drop=True)
        return SourceRows(frame, rows.dataset)
    if benchmark in DEMO_BENCHMARKS:
        frame = _demo(project_root, data_cfg)
        return SourceRows(frame[frame["split"] == benchmark].reset_index(drop=True), "demo")
    if benchmark in CSV_BENCHMARKS:
        csv_path = project_root / setting(data_cfg, f"{benchmark}_csv", "data")
        images = project_root / setting(data_cfg, f"{benchmark}_images", "data")
        return SourceRows(
            benchmark_csv_manifest(benchmark, csv_path, images, project_root), benchmark
        )
    raise ManifestError(f"benchmark '{benchmark}' is not one of {BENCHMARK_SOURCES}")
