"""Retrieval assets: each benchmark's predictions from the index."""

from typing import Any

import dagster as dg

from geoloc_assets.assets.common import result_metadata
from geoloc_assets.partitions import benchmark_partitions
from geoloc_assets.resources import MlflowTracker, ProjectResource
from geoloc_assets.settings import asset_config, code_version
from geoloc_core.steps.predict import predict_benchmark

GROUP = "retrieval"


def build_retrieval_assets(params: dict[str, Any]) -> list:
    predict_config = asset_config("predictions", params)

    @dg.asset(
        group_name=GROUP,
        deps=[
            dg.AssetDep("retrieval_index"),
            dg.AssetDep("benchmark_manifest"),
            # queries are embedded from the cached backbone outputs and segmentation
            dg.AssetDep("backbone_features", partition_mapping=dg.AllPartitionMapping()),
            dg.AssetDep("segmentation_cache", partition_mapping=dg.AllPartitionMapping()),
        ],
        partitions_def=benchmark_partitions,
        code_version=code_version("predictions", params),
        description="Top-k neighbours and the top-1 coordinates for one benchmark.",
    )
    def predictions(
        context: dg.AssetExecutionContext,
        config: predict_config,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        benchmark = context.partition_key
        with mlflow_tracker.asset_run(
            context, config.model_dump(), {"benchmark": benchmark}
        ) as run:
            summary = predict_benchmark(project.paths, benchmark, config.retrieval.model_dump())
            run.log_metrics(summary)
            run.log_artifact(project.paths.predictions(benchmark))
        return dg.MaterializeResult(metadata=result_metadata(summary, run))

    return [predictions]
