"""Refinement assets per benchmark: DualGeo's geographic re-rank, then G3's geo-verification,
whose decision is the benchmark's predictions."""

from typing import Any

import dagster as dg

from geoloc_assets.assets.common import AUTOMATION, materialized
from geoloc_assets.resources import MlflowTracker, ProjectResource
from geoloc_assets.settings import asset_config, code_version

RERANK_GROUP = "rerank"
VERIFICATION_GROUP = "verification"


def build_refinement_assets(params: dict[str, Any], benchmarks: dg.PartitionsDefinition) -> list:
    rerank_config = asset_config("rerank", params)
    verification_config = asset_config("verification", params)

    @dg.asset(
        group_name=RERANK_GROUP,
        deps=["candidates"],
        partitions_def=benchmarks,
        code_version=code_version("rerank", params),
        automation_condition=AUTOMATION,
        description=(
            "Similar candidates re-sorted by distance to the spherical centre of their largest "
            "DBSCAN cluster (haversine, rerank.eps_km, rerank.min_samples)."
        ),
    )
    def rerank(
        context: dg.AssetExecutionContext,
        config: rerank_config,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        from geoloc_core.steps.rerank import rerank_candidates

        benchmark = context.partition_key
        with mlflow_tracker.asset_run(
            context, config.model_dump(), {"benchmark": benchmark}
        ) as run:
            summary = rerank_candidates(project.paths, benchmark, config.rerank.model_dump())
            run.log_metrics(summary)
            context.log.info(f"rerank[{benchmark}]: {summary}")
        return materialized(summary, run, [project.paths.reranked(benchmark)])

    @dg.asset(
        group_name=VERIFICATION_GROUP,
        deps=[
            "rerank",
            "candidates",
            "alignment_model",
            "lmm_diversification",
            "lmm_reasoning",
        ],
        partitions_def=benchmarks,
        code_version=code_version("verification", params),
        automation_condition=AUTOMATION,
        description=(
            "The decision per query: argmax of cos(image GPS-aligned embedding, candidate GPS "
            "embedding) over the top verification.pool_size re-ranked candidates plus G3's "
            "LMM answers (verify), or the first of them (top1); with DualGeo's LMM reasoning, "
            "its answer."
        ),
    )
    def verification(
        context: dg.AssetExecutionContext,
        config: verification_config,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        from geoloc_core.steps.verification import verify_benchmark

        benchmark = context.partition_key
        paths = project.paths
        with mlflow_tracker.asset_run(
            context, config.model_dump(), {"benchmark": benchmark}
        ) as run:
            summary = verify_benchmark(paths, benchmark, config.verification.model_dump())
            run.log_metrics(summary)
            run.log_artifact(paths.predictions(benchmark))
        return materialized(summary, run, [paths.predictions(benchmark)])

    return [rerank, verification]
