"""Model assets: the trained alignment model, reference embeddings and the retrieval index."""

from typing import Any

import dagster as dg
from mlflow.exceptions import MlflowException

from geoloc_assets.assets.common import result_metadata
from geoloc_assets.resources import MlflowTracker, ProjectResource
from geoloc_assets.settings import asset_config, code_version
from geoloc_core.geo.metrics import DEFAULT_THRESHOLDS_KM
from geoloc_core.steps.indexing import build_index, embed_reference
from geoloc_core.steps.training import train_model

GROUP = "model"
REGISTERED_MODEL = "geoloc-alignment"


def build_model_assets(params: dict[str, Any]) -> list:
    train_config = asset_config("alignment_model", params)
    embed_config = asset_config("reference_embeddings", params)
    index_config = asset_config("retrieval_index", params)
    train_version = code_version("alignment_model", params)

    @dg.asset(
        group_name=GROUP,
        deps=["reference_manifest"],
        code_version=train_version,
        description="Image-to-GPS alignment trained contrastively on the reference split.",
    )
    def alignment_model(
        context: dg.AssetExecutionContext,
        config: train_config,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        paths = project.paths
        with mlflow_tracker.asset_run(context, config.model_dump()) as run:

            def on_step(step: int, loss: float, temperature: float) -> None:
                run.log_metrics({"train_loss": loss, "temperature": temperature}, step=step)

            def on_epoch(result) -> None:
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
            run.log_artifact(paths.model_dir / "history.csv", "model")
            version = register_model(run, params["model"])
            summary["registered_version"] = version
        return dg.MaterializeResult(metadata=result_metadata(summary, run))

    @dg.asset(
        group_name=GROUP,
        deps=[alignment_model],
        code_version=code_version("reference_embeddings", params),
        description="Reference images embedded by the trained model (fp16).",
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


def register_model(run, model_section: dict[str, Any]) -> str:
    """Register the logged weights in the MLflow model registry as geoloc-alignment."""
    client = run.client
    try:
        client.get_registered_model(REGISTERED_MODEL)
    except MlflowException:
        client.create_registered_model(REGISTERED_MODEL)
    source = f"runs:/{run.run_id}/model"
    version = client.create_model_version(
        REGISTERED_MODEL,
        source=source,
        run_id=run.run_id,
        tags={
            "variant": str(model_section.get("variant", "image-only")),
            "backbone": str(model_section["backbone"]),
        },
    )
    return str(version.version)
