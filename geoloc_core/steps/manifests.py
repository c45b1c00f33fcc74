"""Step: raw data -> the reference manifest and one manifest per benchmark, each through the gate.

Each build writes three files: the manifest (accepted rows only), the quarantine report
(id, reason) and the gate's JSON report, which the blocking asset check reads. A configured
benchmark whose CSV does not exist is skipped: its manifest is empty (same columns), its report
says why, and every later step writes empty outputs for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from geoloc_core.data.manifest import (
    MANIFEST_COLUMNS,
    REFERENCE_SPLITS,
    ManifestError,
    write_manifest,
)
from geoloc_core.data.sources import (
    SourceRows,
    absent_benchmark,
    benchmark_rows,
    reference_rows,
)
from geoloc_core.params import load_params, section
from geoloc_core.paths import REFERENCE, ProjectPaths
from geoloc_core.validation.gate import (
    QUARANTINE_COLUMNS,
    GateOutcome,
    gate_manifest,
    read_report,
    skipped_report,
    write_report,
)
from geoloc_core.validation.settings import ManifestSettings


def _manifest_settings(
    paths: ProjectPaths, manifest_cfg: Mapping[str, Any] | None
) -> Mapping[str, Any]:
    """The `manifest` section passed in, else the one in the project's params.yaml."""
    if manifest_cfg is not None:
        return manifest_cfg
    return section(load_params(paths.root), "manifest")


def _gate_and_write(
    paths: ProjectPaths,
    rows: SourceRows,
    manifest_cfg: Mapping[str, Any],
    name: str,
    target: Path,
) -> GateOutcome:
    settings = ManifestSettings.from_section(manifest_cfg).gate(rows.dataset)
    outcome = gate_manifest(rows.frame, settings, paths.root, rows.dataset)
    write_manifest(outcome.accepted, target)
    write_manifest(outcome.quarantine, paths.quarantine_report(name))
    write_report(outcome.report, paths.validation_report(name))
    return outcome


def _summary(outcome: GateOutcome) -> dict[str, Any]:
    report = outcome.report
    return {
        "rows": report.rows_accepted,
        "rows_in": report.rows_in,
        "quarantined": report.rows_quarantined,
        "failure_rate": report.failure_rate,
        "gate_passed": report.passed,
    }


def build_reference_manifest(
    paths: ProjectPaths,
    data_cfg: Mapping[str, Any],
    manifest_cfg: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Reference and validation rows of params data.source, validated by the gate."""
    rows = reference_rows(paths.root, data_cfg)
    selected = rows.frame[rows.frame["split"].isin(REFERENCE_SPLITS)].reset_index(drop=True)
    if selected.empty:
        raise ManifestError(
            f"no rows of splits {REFERENCE_SPLITS} in source '{data_cfg.get('source')}': "
            "nothing to train on"
        )
    outcome = _gate_and_write(
        paths,
        SourceRows(selected, rows.dataset),
        _manifest_settings(paths, manifest_cfg),
        REFERENCE,
        paths.reference_manifest,
    )
    counts = outcome.accepted["split"].value_counts().to_dict()
    return {**_summary(outcome), **{f"rows_{k}": int(v) for k, v in counts.items()}}


def build_benchmark_manifest(
    paths: ProjectPaths,
    data_cfg: Mapping[str, Any],
    benchmark: str,
    manifest_cfg: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One benchmark's query rows, validated by the gate; an empty manifest when its data set
    is absent (the summary's `skipped` says which file and how to provide it)."""
    reason = absent_benchmark(paths.root, data_cfg, benchmark)
    if reason:
        return _skip_benchmark(paths, benchmark, reason)
    rows = benchmark_rows(paths.root, data_cfg, benchmark)
    if rows.frame.empty:
        raise ManifestError(
            f"benchmark '{benchmark}' has no rows; remove it from params benchmarks.names or "
            "provide its data"
        )
    outcome = _gate_and_write(
        paths,
        rows,
        _manifest_settings(paths, manifest_cfg),
        benchmark,
        paths.benchmark_manifest(benchmark),
    )
    return _summary(outcome)


def _skip_benchmark(paths: ProjectPaths, benchmark: str, reason: str) -> dict[str, Any]:
    """Empty manifest and quarantine with the usual columns, and a report that says why."""
    empty = pd.DataFrame(columns=list(MANIFEST_COLUMNS))
    write_manifest(empty, paths.benchmark_manifest(benchmark))
    quarantine = pd.DataFrame(columns=list(QUARANTINE_COLUMNS))
    write_manifest(quarantine, paths.quarantine_report(benchmark))
    report = skipped_report(benchmark, reason)
    write_report(report, paths.validation_report(benchmark))
    return {
        "rows": 0,
        "rows_in": 0,
        "quarantined": 0,
        "failure_rate": 0.0,
        "gate_passed": report.passed,
        "skipped": reason,
    }


def skipped_reason(paths: ProjectPaths, benchmark: str) -> str:
    """Why the benchmark's manifest was left empty ("" when it was not skipped), for the
    steps after it to repeat where the empty result is seen."""
    report = paths.validation_report(benchmark)
    return read_report(report).skipped if report.is_file() else ""
