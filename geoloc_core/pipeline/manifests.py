"""The data steps: the reference and benchmark manifests, and the gate's verdict on each."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import yaml

from geoloc_core.data.manifest import read_manifest
from geoloc_core.paths import REFERENCE, ProjectPaths
from geoloc_core.pipeline.outcome import CheckOutcome, Meta, StepContext, StepOutcome
from geoloc_core.pipeline.tables import markdown_preview
from geoloc_core.steps.manifests import build_benchmark_manifest, build_reference_manifest
from geoloc_core.validation.gate import read_report

QUARANTINE_PREVIEW_ROWS = 50


def raw_data_version(root: Path, data_root: str) -> str:
    """md5 that data.dvc records for the raw data; else a hash of the raw manifest file."""
    dvc_file = root / "data.dvc"
    if dvc_file.is_file():
        outs = yaml.safe_load(dvc_file.read_text()).get("outs", [])
        if outs and outs[0].get("md5"):
            return str(outs[0]["md5"])
    manifest = root / data_root / "manifest.csv"
    if manifest.is_file():
        return hashlib.md5(manifest.read_bytes()).hexdigest()
    return "absent"


def reference_manifest(ctx: StepContext) -> StepOutcome:
    paths = ctx.paths
    summary = build_reference_manifest(paths, ctx.section("data"), ctx.section("manifest"))
    ctx.run.log_metrics(summary)
    ctx.run.log_artifact(paths.quarantine_report(REFERENCE), "gate")
    ctx.run.log_artifact(paths.validation_report(REFERENCE), "gate")
    ctx.log(f"reference manifest: {summary}")
    return StepOutcome(summary, [paths.reference_manifest, paths.quarantine_report(REFERENCE)])


def benchmark_manifest(ctx: StepContext) -> StepOutcome:
    benchmark, paths = ctx.key, ctx.paths
    summary = build_benchmark_manifest(
        paths, ctx.section("data"), benchmark, ctx.section("manifest")
    )
    skipped = summary.get("skipped")
    if skipped:
        ctx.warn(f"benchmark_manifest[{benchmark}] skipped: {skipped}")
        ctx.run.set_tags({"skipped": "true"})
    ctx.run.log_metrics(summary)
    ctx.run.log_artifact(paths.quarantine_report(benchmark), "gate")
    ctx.run.log_artifact(paths.validation_report(benchmark), "gate")
    files = [paths.benchmark_manifest(benchmark), paths.quarantine_report(benchmark)]
    return StepOutcome(summary, files)


def gate_verdict(paths: ProjectPaths, partition: str | None) -> CheckOutcome:
    """The gate's verdict with its report attached: counts, expectations, quarantined rows."""
    name = partition or REFERENCE
    report = read_report(paths.validation_report(name))
    quarantine_file = paths.quarantine_report(name)
    quarantine = read_manifest(quarantine_file)
    preview = quarantine.head(QUARANTINE_PREVIEW_ROWS)
    more = len(quarantine) - len(preview)
    preview_text = markdown_preview(preview) if len(preview) else "(no row quarantined)"
    if more > 0:
        preview_text += f"\n\n… and {more} more in {quarantine_file}"
    expectations = pd.DataFrame(report.expectations)
    checked = markdown_preview(expectations) if len(expectations) else "(nothing checked)"
    return CheckOutcome(
        passed=report.passed,
        description=report.message,
        metadata={
            "message": report.message,
            "rows_in": report.rows_in,
            "rows_accepted": report.rows_accepted,
            "rows_quarantined": report.rows_quarantined,
            "failure_rate": report.failure_rate,
            "max_failure_rate": report.max_failure_rate,
            "row_count_ok": report.row_count_ok,
            "expected_rows": str(report.expected_rows),
            "failures_by_rule": Meta("json", report.failures_by_rule),
            "expectations": Meta("md", checked),
            "quarantine": Meta("md", preview_text),
            "quarantine_file": Meta("path", str(quarantine_file)),
            **({"skipped": report.skipped} if report.skipped else {}),
        },
    )
