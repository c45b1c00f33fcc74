"""Evaluation assets: accuracy within 1/25/200/750/2500 km per benchmark, and the report."""

from typing import Any

import dagster as dg

from geoloc_assets.assets.common import AUTOMATION, materialized
from geoloc_assets.resources import MlflowTracker, ProjectResource
from geoloc_assets.settings import asset_config, code_version
from geoloc_core.report.labels import LABEL_SECTIONS

GROUP = "evaluation"
BASELINES_GROUP = "baselines"
ALL = dg.AllPartitionMapping()


def build_evaluation_assets(params: dict[str, Any], benchmarks: dg.PartitionsDefinition) -> list:
    metrics_config = asset_config("metrics", params)
    report_config = asset_config("report", params)
    baselines_config = asset_config("baselines", params)

    @dg.asset(
        group_name=BASELINES_GROUP,
        deps=[
            dg.AssetDep("reference_manifest"),
            dg.AssetDep("benchmark_manifest"),
            dg.AssetDep("segmentation_cache", partition_mapping=ALL),
            dg.AssetDep("backbone_features", partition_mapping=ALL),
        ],
        partitions_def=benchmarks,
        code_version=code_version("baselines", params),
        automation_condition=AUTOMATION,
        description=(
            "metrics/baselines/{benchmark}.json: a random reference image, and 1-NN over raw "
            "colour features, label histograms and the frozen backbone embedding."
        ),
    )
    def baselines(
        context: dg.AssetExecutionContext,
        config: baselines_config,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        from geoloc_core.steps.baselines import compute_baselines

        benchmark = context.partition_key
        paths = project.paths
        with mlflow_tracker.asset_run(
            context, config.model_dump(), {"benchmark": benchmark}
        ) as run:
            summary = compute_baselines(
                paths, benchmark, config.baselines.model_dump(), config.evaluation.model_dump()
            )
            run.log_metrics(summary)
            context.log.info(f"baselines[{benchmark}]: {summary}")
        target = paths.baseline_metrics(benchmark)
        return materialized(summary, run, [target])

    @dg.asset(
        group_name=GROUP,
        deps=["verification"],
        partitions_def=benchmarks,
        code_version=code_version("metrics", params),
        automation_condition=AUTOMATION,
        description=(
            "metrics/{benchmark}.json: accuracy at each threshold, median and mean error, and "
            "the same for the retrieval top-1 and the re-ranked top-1 (stages)."
        ),
    )
    def metrics(
        context: dg.AssetExecutionContext,
        config: metrics_config,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        from geoloc_core.steps.evaluate import evaluate_benchmark, flat_metrics

        benchmark = context.partition_key
        paths = project.paths
        with mlflow_tracker.asset_run(
            context, config.model_dump(), {"benchmark": benchmark}
        ) as run:
            values = evaluate_benchmark(paths, benchmark, config.evaluation.model_dump())
            flat = flat_metrics(values)
            run.log_metrics(flat)
            run.log_artifact(paths.metrics(benchmark))
            context.log.info(f"{benchmark}: {flat}")
        errors = paths.errors(benchmark)
        return materialized(flat, run, [paths.metrics(benchmark), errors])

    @dg.asset(
        group_name=GROUP,
        deps=[
            dg.AssetDep(metrics, partition_mapping=ALL),
            dg.AssetDep(baselines, partition_mapping=ALL),
        ],
        code_version=code_version("report", params),
        automation_condition=AUTOMATION,
        description=(
            "reports/report.md and reports/report.html (self-contained): per benchmark each "
            "stage, the baselines and published results; error CDFs, prediction maps on "
            "coastlines; plot data metrics/plots/cdf_*.csv and accuracy_*.csv for DVC."
        ),
    )
    def report(
        context: dg.AssetExecutionContext,
        config: report_config,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        from geoloc_core.steps.report import build_report

        settings = config.model_dump()
        with mlflow_tracker.asset_run(context, settings) as run:
            files = build_report(
                project.paths,
                config.benchmarks.names,
                config.evaluation.thresholds_km,
                config.evaluation.distance,
                {name: settings[name] for name in LABEL_SECTIONS},
            )
            for path in files:
                run.log_artifact(path, "report")
        reports = project.paths.reports
        extra = {
            "report": dg.MetadataValue.path(str(reports / "report.html")),
            "error_curves": dg.MetadataValue.path(str(reports / "error_curves.png")),
        }
        return materialized({"files": len(files)}, run, files, extra)

    return [baselines, metrics, report]
