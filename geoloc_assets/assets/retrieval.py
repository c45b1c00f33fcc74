"""Retrieval assets: each benchmark's candidates from the index (similar and dissimilar)."""

from typing import Any

import dagster as dg

from geoloc_assets.assets.common import AUTOMATION, materialized
from geoloc_assets.partitions import GPU_POOL, GPU_STEP_TAGS
from geoloc_assets.resources import MlflowTracker, ProjectResource
from geoloc_assets.settings import asset_config, code_version

GROUP = "retrieval"
ALL_SHARDS = dg.AllPartitionMapping()


def build_retrieval_assets(params: dict[str, Any], benchmarks: dg.PartitionsDefinition) -> list:
    candidates_config = asset_config("candidates", params)

    @dg.asset(
        group_name=GROUP,
        deps=[
            dg.AssetDep("retrieval_index"),
            dg.AssetDep("alignment_model"),
            dg.AssetDep("benchmark_manifest"),
            dg.AssetDep("place_texts"),
            # queries are embedded from the cached backbone outputs and segmentation
            dg.AssetDep("backbone_features", partition_mapping=ALL_SHARDS),
            dg.AssetDep("segmentation_cache", partition_mapping=ALL_SHARDS),
        ],
        partitions_def=benchmarks,
        code_version=code_version("candidates", params),
        automation_condition=AUTOMATION,
        pool=GPU_POOL,  # embeds the queries and searches (faiss-gpu when present)
        op_tags=GPU_STEP_TAGS,
        description=(
            "Per query: the top retrieval.top_k similar and retrieval.dissimilar_k least "
            "similar reference images, with coordinates, scores and place names."
        ),
    )
    def candidates(
        context: dg.AssetExecutionContext,
        config: candidates_config,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        from geoloc_core.steps.candidates import build_candidates

        benchmark = context.partition_key
        paths = project.paths
        with mlflow_tracker.asset_run(
            context, config.model_dump(), {"benchmark": benchmark}
        ) as run:
            summary = build_candidates(
                paths, benchmark, config.retrieval.model_dump(), config.index.model_dump()
            )
            run.log_metrics(summary)
            context.log.info(f"candidates[{benchmark}]: {summary}")
        files = [paths.candidates(benchmark), *paths.query_embeddings(benchmark)]
        return materialized(summary, run, files)

    return [candidates]
