"""Step: raw data -> the reference manifest and one manifest per benchmark."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from geoloc_core.data.manifest import (
    REFERENCE_SPLITS,
    ManifestError,
    check_manifest,
    demo_manifest,
    write_manifest,
)
from geoloc_core.paths import ProjectPaths

KNOWN_SOURCES = ("demo",)


def load_source_manifest(paths: ProjectPaths, data_cfg: Mapping[str, Any]) -> pd.DataFrame:
    source = data_cfg.get("source")
    if source not in KNOWN_SOURCES:
        raise ManifestError(f"params data.source '{source}' is not one of {KNOWN_SOURCES}")
    return demo_manifest(paths.root / data_cfg["root"], paths.root)


def split_out_problems(
    manifest: pd.DataFrame, paths: ProjectPaths
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows with a problem go to quarantine (id, reason); the rest proceed."""
    problems = check_manifest(manifest)
    missing = [
        (row.id, f"image file not found: {row.image}")
        for row in manifest.itertuples()
        if not (paths.root / row.image).is_file()
    ]
    quarantine = pd.DataFrame(problems + missing, columns=["id", "reason"])
    bad_ids = set(quarantine["id"])
    return manifest[~manifest["id"].isin(bad_ids)].reset_index(drop=True), quarantine


def build_reference_manifest(paths: ProjectPaths, data_cfg: Mapping[str, Any]) -> dict[str, Any]:
    manifest, quarantine = split_out_problems(load_source_manifest(paths, data_cfg), paths)
    reference = manifest[manifest["split"].isin(REFERENCE_SPLITS)].reset_index(drop=True)
    if reference.empty:
        raise ManifestError(
            f"no rows of splits {REFERENCE_SPLITS} in {data_cfg['root']}: nothing to train on"
        )
    write_manifest(reference, paths.reference_manifest)
    write_manifest(quarantine, paths.quarantine)
    counts = reference["split"].value_counts().to_dict()
    return {
        "rows": len(reference),
        "quarantined": len(quarantine),
        **{f"rows_{k}": v for k, v in counts.items()},
    }


def build_benchmark_manifest(
    paths: ProjectPaths, data_cfg: Mapping[str, Any], benchmark: str
) -> dict[str, Any]:
    manifest, _ = split_out_problems(load_source_manifest(paths, data_cfg), paths)
    rows = manifest[manifest["split"] == benchmark].reset_index(drop=True)
    if rows.empty:
        raise ManifestError(
            f"benchmark '{benchmark}' has no rows in {data_cfg['root']}; remove it from "
            "params benchmarks.names or provide its data"
        )
    write_manifest(rows, paths.benchmark_manifest(benchmark))
    return {"rows": len(rows)}
