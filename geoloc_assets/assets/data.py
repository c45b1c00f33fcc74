"""Data assets: the raw data's version, the reference manifest and the benchmark manifests,
each guarded by a blocking asset check that reads the manifest gate's report.

The gate (Great Expectations 1.x, geoloc_core.validation) runs while the manifest is built:
bad rows go to a quarantine report and the rest are written. The check fails when the failure
rate is over params manifest.max_quarantine_fraction or a known dataset has the wrong size;
it is blocking, so nothing downstream runs in that Dagster run. A configured benchmark whose
CSV does not exist materializes an empty manifest with metadata `skipped` (which file, how to
provide it) and a passing check, so its partition is neither failed nor missing.
"""

import hashlib
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import yaml

from geoloc_assets.assets.common import AUTOMATION, materialized
from geoloc_assets.partitions import KNOWN_BENCHMARKS, configured_benchmarks
from geoloc_assets.resources import MlflowTracker, ProjectResource
from geoloc_assets.settings import asset_config, code_version
from geoloc_core.data.manifest import read_manifest
from geoloc_core.paths import ProjectPaths
from geoloc_core.steps.manifests import (
    REFERENCE,
    build_benchmark_manifest,
    build_reference_manifest,
)
from geoloc_core.validation.gate import GateReport, read_report

GROUP = "data"
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


def markdown_table(frame: pd.DataFrame) -> str:
    """A small frame as a Markdown table for Dagster metadata (no tabulate needed)."""

    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join([header, rule, *rows])


def gate_check_result(paths: ProjectPaths, name: str) -> dg.AssetCheckResult:
    """The gate's verdict with its report attached: counts, expectations, quarantined rows."""
    report: GateReport = read_report(paths.validation_report(name))
    quarantine_file = paths.quarantine_report(name)
    quarantine = read_manifest(quarantine_file)
    preview = quarantine.head(QUARANTINE_PREVIEW_ROWS)
    more = len(quarantine) - len(preview)
    preview_text = markdown_table(preview) if len(preview) else "(no row quarantined)"
    if more > 0:
        preview_text += f"\n\n… and {more} more in {quarantine_file}"
    expectations = pd.DataFrame(report.expectations)
    checked = markdown_table(expectations) if len(expectations) else "(nothing checked)"
    return dg.AssetCheckResult(
        passed=report.passed,
        severity=dg.AssetCheckSeverity.ERROR,
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
            "failures_by_rule": dg.MetadataValue.json(report.failures_by_rule),
            "expectations": dg.MetadataValue.md(checked),
            "quarantine": dg.MetadataValue.md(preview_text),
            "quarantine_file": dg.MetadataValue.path(str(quarantine_file)),
            **({"skipped": report.skipped} if report.skipped else {}),
        },
    )


def build_data_assets(
    params: dict[str, Any], benchmark_partitions: dg.PartitionsDefinition | None = None
) -> list:
    if benchmark_partitions is None:  # the data layer alone (its tests): every known benchmark
        names = params.get("benchmarks", {}).get("names", KNOWN_BENCHMARKS)
        benchmark_partitions = configured_benchmarks(names)
    reference_config = asset_config("reference_manifest", params)
    benchmark_config = asset_config("benchmark_manifest", params)

    @dg.observable_source_asset(
        group_name=GROUP,
        description="The raw input data, versioned by data.dvc (demo world or real datasets).",
    )
    def raw_data(project: ProjectResource) -> dg.DataVersion:
        return dg.DataVersion(raw_data_version(project.paths.root, params["data"]["root"]))

    @dg.asset(
        group_name=GROUP,
        automation_condition=AUTOMATION,
        deps=[raw_data],
        code_version=code_version("reference_manifest", params),
        description="Reference (database + training) and validation rows in the common schema.",
    )
    def reference_manifest(
        context: dg.AssetExecutionContext,
        config: reference_config,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        paths = project.paths
        with mlflow_tracker.asset_run(context, config.model_dump()) as run:
            summary = build_reference_manifest(
                paths, config.data.model_dump(), config.manifest.model_dump()
            )
            run.log_metrics(summary)
            run.log_artifact(paths.quarantine_report(REFERENCE), "gate")
            run.log_artifact(paths.validation_report(REFERENCE), "gate")
            context.log.info(f"reference manifest: {summary}")
        return materialized(
            summary, run, [paths.reference_manifest, paths.quarantine_report(REFERENCE)]
        )

    @dg.asset_check(
        asset=reference_manifest,
        blocking=True,
        description="Great Expectations gate: blocks everything downstream when too many rows "
        "are quarantined or a known dataset has the wrong size.",
    )
    def reference_manifest_gate(project: ProjectResource) -> dg.AssetCheckResult:
        return gate_check_result(project.paths, REFERENCE)

    @dg.asset(
        group_name=GROUP,
        automation_condition=AUTOMATION,
        deps=[raw_data],
        partitions_def=benchmark_partitions,
        code_version=code_version("benchmark_manifest", params),
        description="One benchmark's query rows in the common schema.",
    )
    def benchmark_manifest(
        context: dg.AssetExecutionContext,
        config: benchmark_config,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        benchmark = context.partition_key
        paths = project.paths
        with mlflow_tracker.asset_run(
            context, config.model_dump(), {"benchmark": benchmark}
        ) as run:
            summary = build_benchmark_manifest(
                paths, config.data.model_dump(), benchmark, config.manifest.model_dump()
            )
            skipped = summary.get("skipped")
            if skipped:
                context.log.warning(f"benchmark_manifest[{benchmark}] skipped: {skipped}")
                run.set_tags({"skipped": "true"})
            run.log_metrics(summary)
            run.log_artifact(paths.quarantine_report(benchmark), "gate")
            run.log_artifact(paths.validation_report(benchmark), "gate")
        return materialized(
            summary,
            run,
            [paths.benchmark_manifest(benchmark), paths.quarantine_report(benchmark)],
        )

    @dg.asset_check(
        asset=benchmark_manifest,
        blocking=True,
        partitions_def=benchmark_partitions,
        description="Great Expectations gate for one benchmark (same rules as the reference).",
    )
    def benchmark_manifest_gate(
        context: dg.AssetCheckExecutionContext, project: ProjectResource
    ) -> dg.AssetCheckResult:
        return gate_check_result(project.paths, context.partition_key)

    return [
        raw_data,
        reference_manifest,
        reference_manifest_gate,
        benchmark_manifest,
        benchmark_manifest_gate,
    ]
