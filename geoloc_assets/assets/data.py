"""Data assets: the raw data's version, the reference manifest and the benchmark manifests."""

import hashlib
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import yaml

from geoloc_assets.assets.common import result_metadata
from geoloc_assets.partitions import benchmark_partitions
from geoloc_assets.resources import MlflowTracker, ProjectResource
from geoloc_assets.settings import asset_config, code_version
from geoloc_core.data.manifest import check_manifest, read_manifest
from geoloc_core.steps.manifests import build_benchmark_manifest, build_reference_manifest

GROUP = "data"


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


def build_data_assets(params: dict[str, Any]) -> list:
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
        with mlflow_tracker.asset_run(context, config.model_dump()) as run:
            summary = build_reference_manifest(project.paths, config.data.model_dump())
            run.log_metrics(summary)
            run.log_artifact(project.paths.quarantine)
            context.log.info(f"reference manifest: {summary}")
        return dg.MaterializeResult(metadata=result_metadata(summary, run))

    @dg.asset_check(
        asset=reference_manifest,
        blocking=True,
        description="Blocks training on an empty or invalid manifest or too many quarantined rows.",
    )
    def reference_manifest_is_usable(project: ProjectResource) -> dg.AssetCheckResult:
        manifest = read_manifest(project.paths.reference_manifest)
        quarantined = pd.read_csv(project.paths.quarantine)
        problems = check_manifest(manifest)
        total = len(manifest) + len(quarantined)
        fraction = len(quarantined) / total if total else 1.0
        limit = float(params["manifest"]["max_quarantine_fraction"])
        return dg.AssetCheckResult(
            passed=not problems and len(manifest) > 0 and fraction <= limit,
            metadata={
                "rows": len(manifest),
                "quarantined": len(quarantined),
                "quarantined_fraction": fraction,
                "limit": limit,
                "problems": str(problems[:10]),
            },
        )

    @dg.asset(
        group_name=GROUP,
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
        with mlflow_tracker.asset_run(
            context, config.model_dump(), {"benchmark": benchmark}
        ) as run:
            summary = build_benchmark_manifest(project.paths, config.data.model_dump(), benchmark)
            run.log_metrics(summary)
        return dg.MaterializeResult(metadata=result_metadata(summary, run))

    return [raw_data, reference_manifest, reference_manifest_is_usable, benchmark_manifest]
