"""Evaluation assets: accuracy within 1/25/200/750/2500 km per benchmark, and the report."""

from typing import Any

import dagster as dg

from geoloc_assets.assets.common import result_metadata
from geoloc_assets.partitions import benchmark_partitions
from geoloc_assets.resources import MlflowTracker, ProjectResource
from geoloc_assets.settings import asset_config, code_version
from geoloc_core.steps.evaluate import evaluate_benchmark
from geoloc_core.steps.report import build_report

GROUP = "evaluation"


def build_evaluation_assets(params: dict[str, Any]) -> list:
    metrics_config = asset_config("metrics", params)
    report_config = asset_config("report", params)

    @dg.asset(
        group_name=GROUP,
        deps=["predictions"],
        partitions_def=benchmark_partitions,
        code_version=code_version("metrics", params),
        description="metrics/{benchmark}.json: accuracy at each threshold, median and mean error.",
    )
    def metrics(
        context: dg.AssetExecutionContext,
        config: metrics_config,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        benchmark = context.partition_key
        with mlflow_tracker.asset_run(
            context, config.model_dump(), {"benchmark": benchmark}
        ) as run:
            values = evaluate_benchmark(project.paths, benchmark, config.evaluation.model_dump())
            run.log_metrics(values)
            run.log_artifact(project.paths.metrics(benchmark))
            context.log.info(f"{benchmark}: {values}")
        return dg.MaterializeResult(metadata=result_metadata(values, run))

    @dg.asset(
        group_name=GROUP,
        deps=[metrics],
        code_version=code_version("report", params),
        description="Error curves and prediction maps for every evaluated benchmark.",
    )
    def report(
        context: dg.AssetExecutionContext,
        config: report_config,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        with mlflow_tracker.asset_run(context, config.model_dump()) as run:
            files = build_report(
                project.paths, config.benchmarks.names, config.evaluation.thresholds_km
            )
            for path in files:
                run.log_artifact(path, "report")
        metadata = result_metadata({"files": len(files)}, run)
        curves = project.paths.reports / "error_curves.png"
        metadata["error_curves"] = dg.MetadataValue.path(str(curves))
        return dg.MaterializeResult(metadata=metadata)

    return [metrics, report]
