"""Model assets: the trained alignment model, reference embeddings and the retrieval index."""

import json
from typing import Any

import dagster as dg
from mlflow.exceptions import MlflowException

from geoloc_assets.assets.common import result_metadata
from geoloc_assets.resources import MlflowTracker, ProjectResource, TrackedRun
from geoloc_assets.settings import asset_config, code_version
from geoloc_core.geo.metrics import DEFAULT_THRESHOLDS_KM
from geoloc_core.steps.indexing import build_index, embed_reference
from geoloc_core.steps.training import HISTORY_FILE, train_model
from geoloc_core.training.loop import CHECKPOINT_NAME, EpochResult
from geoloc_core.training.project_inputs import checkpoint_directory

GROUP = "model"
REGISTERED_MODEL = "geoloc-alignment"
ALL_SHARDS = dg.AllPartitionMapping()


def build_model_assets(params: dict[str, Any]) -> list:
    train_config = asset_config("alignment_model", params)
    embed_config = asset_config("reference_embeddings", params)
    index_config = asset_config("retrieval_index", params)
    train_version = code_version("alignment_model", params)

    @dg.asset(
        group_name=GROUP,
        deps=[
            dg.AssetDep("reference_manifest"),
            dg.AssetDep("place_texts"),
            dg.AssetDep("segmentation_cache", partition_mapping=ALL_SHARDS),
            dg.AssetDep("backbone_features", partition_mapping=ALL_SHARDS),
        ],
        code_version=train_version,
        description=(
            "Geo-alignment heads of model.variant (image-only, g3, dualgeo, dualgeo+text) "
            "trained contrastively on the cached backbone features of the reference split."
        ),
    )
    def alignment_model(
        context: dg.AssetExecutionContext,
        config: train_config,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        paths = project.paths
        variant = config.model.variant
        with mlflow_tracker.asset_run(context, config.model_dump(), {"variant": variant}) as run:

            def on_step(step: int, metrics: dict[str, float]) -> None:
                run.log_metrics(metrics, step=step)

            def on_epoch(result: EpochResult) -> None:
                context.log.info(
                    f"epoch {result.epoch}: loss {result.train_loss:.4f}, "
                    f"validation {result.validation}"
                )
                run.log_metrics(
                    {
                        "epoch_loss": result.train_loss,
                        "lr": result.lr,
                        **{f"val_{k}": v for k, v in result.validation.items()},
                    },
                    step=result.epoch,
                )

            summary = train_model(
                paths,
                config.model.model_dump(),
                config.train.model_dump(),
                DEFAULT_THRESHOLDS_KM,
                fingerprint=train_version,
                on_step=on_step,
                on_epoch=on_epoch,
            )
            run.log_artifact(paths.model_weights, "model")
            run.log_artifact(paths.model_dir / "config.json", "model")
            run.log_artifact(paths.model_dir / HISTORY_FILE, "model")
            checkpoint = checkpoint_directory(paths, "alignment") / CHECKPOINT_NAME
            run.log_artifact(checkpoint, "checkpoint")
            summary["registered_version"] = register_model(run, variant, paths.model_dir)
        return dg.MaterializeResult(metadata=result_metadata(summary, run))

    @dg.asset(
        group_name=GROUP,
        deps=[
            dg.AssetDep(alignment_model),
            dg.AssetDep("segmentation_cache", partition_mapping=ALL_SHARDS),
            dg.AssetDep("backbone_features", partition_mapping=ALL_SHARDS),
        ],
        code_version=code_version("reference_embeddings", params),
        description="Reference images as the variant's retrieval embedding (fp16).",
    )
    def reference_embeddings(
        context: dg.AssetExecutionContext,
        config: embed_config,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        with mlflow_tracker.asset_run(context, config.model_dump()) as run:
            summary = embed_reference(project.paths, config.index.model_dump())
            run.log_metrics(summary)
        return dg.MaterializeResult(metadata=result_metadata(summary, run))

    @dg.asset(
        group_name=GROUP,
        deps=[reference_embeddings],
        code_version=code_version("retrieval_index", params),
        description="FAISS inner-product index over the reference embeddings.",
    )
    def retrieval_index(
        context: dg.AssetExecutionContext,
        config: index_config,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        with mlflow_tracker.asset_run(context, config.model_dump()) as run:
            summary = build_index(project.paths, config.index.model_dump())
            run.log_metrics(summary)
        return dg.MaterializeResult(metadata=result_metadata(summary, run))

    return [alignment_model, reference_embeddings, retrieval_index]


def register_model(run: TrackedRun, variant: str, model_dir) -> str:
    """Register the logged weights in the MLflow model registry as geoloc-alignment."""
    client = run.client
    try:
        client.get_registered_model(REGISTERED_MODEL)
    except MlflowException:
        client.create_registered_model(REGISTERED_MODEL)
    features = json.loads((model_dir / "config.json").read_text())["features"]
    version = client.create_model_version(
        REGISTERED_MODEL,
        source=f"runs:/{run.run_id}/model",
        run_id=run.run_id,
        tags={
            "variant": variant,
            "backbone": str(features["architecture"]),
            "pretrained": str(features["pretrained"]),
        },
    )
    return str(version.version)
