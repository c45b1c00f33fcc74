"""Model assets: the trained alignment model, the reference embeddings (one partition per shard
of image ids, as the backbone features) and the retrieval index over all of them."""

import json
from typing import Any

import dagster as dg
from mlflow.exceptions import MlflowException

from geoloc_assets.assets.common import AUTOMATION, materialized
from geoloc_assets.partitions import GPU_POOL, GPU_STEP_TAGS
from geoloc_assets.resources import MlflowTracker, ProjectResource, TrackedRun
from geoloc_assets.settings import asset_config, code_version
from geoloc_core.geo.metrics import DEFAULT_THRESHOLDS_KM
from geoloc_core.models.config import FeaturesConfig
from geoloc_core.params import section
from geoloc_core.segmentation.sharding import shard_keys

MODEL_GROUP = "model"
INDEX_GROUP = "index"
REGISTERED_MODEL = "geoloc-alignment"
ALL_SHARDS = dg.AllPartitionMapping()


def build_model_assets(params: dict[str, Any], feature_shards: dg.PartitionsDefinition) -> list:
    train_config = asset_config("alignment_model", params)
    embed_config = asset_config("reference_embeddings", params)
    index_config = asset_config("retrieval_index", params)
    train_version = code_version("alignment_model", params)
    n_shards = FeaturesConfig.from_section(section(params, "features")).n_shards
    keys = shard_keys(n_shards)

    @dg.asset(
        group_name=MODEL_GROUP,
        deps=[
            dg.AssetDep("reference_manifest"),
            dg.AssetDep("place_texts"),
            dg.AssetDep("segmentation_cache", partition_mapping=ALL_SHARDS),
            dg.AssetDep("backbone_features", partition_mapping=ALL_SHARDS),
        ],
        code_version=train_version,
        automation_condition=AUTOMATION,
        pool=GPU_POOL,
        op_tags=GPU_STEP_TAGS,
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
        from geoloc_core.steps.training import HISTORY_FILE, train_model
        from geoloc_core.training.loop import CHECKPOINT_NAME, EpochResult
        from geoloc_core.training.project_inputs import checkpoint_directory

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
        return materialized(summary, run, [paths.model_weights, paths.model_dir / "config.json"])

    @dg.asset(
        group_name=INDEX_GROUP,
        deps=[
            dg.AssetDep(alignment_model),
            dg.AssetDep("segmentation_cache", partition_mapping=ALL_SHARDS),
            dg.AssetDep("backbone_features"),  # the same shard
        ],
        partitions_def=feature_shards,
        code_version=code_version("reference_embeddings", params),
        automation_condition=AUTOMATION,
        pool=GPU_POOL,
        op_tags=GPU_STEP_TAGS,
        description=(
            "One shard of reference images as retrieval vectors (fp16): embeddings.parts, by "
            "default each paper's own (G3: frozen | image->text | image->GPS; DualGeo: "
            "fused | frozen)."
        ),
    )
    def reference_embeddings(
        context: dg.AssetExecutionContext,
        config: embed_config,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        from geoloc_core.steps.indexing import embed_reference_shard, shard_files

        shard = context.partition_key
        with mlflow_tracker.asset_run(context, config.model_dump(), {"shard": shard}) as run:
            summary = embed_reference_shard(
                project.paths, config.embeddings.model_dump(), shard, n_shards
            )
            run.log_metrics(summary)
            context.log.info(f"reference embeddings shard {shard}: {summary}")
        return materialized(summary, run, shard_files(project.paths, shard))

    @dg.asset(
        group_name=INDEX_GROUP,
        deps=[dg.AssetDep(reference_embeddings, partition_mapping=ALL_SHARDS)],
        code_version=code_version("retrieval_index", params),
        automation_condition=AUTOMATION,
        description="FAISS index (index.type: flat, ivfpq or hnsw) over every embedding shard.",
    )
    def retrieval_index(
        context: dg.AssetExecutionContext,
        config: index_config,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        from geoloc_core.steps.indexing import INDEX_RECORD, build_index

        paths = project.paths
        with mlflow_tracker.asset_run(context, config.model_dump()) as run:
            summary = build_index(paths, config.index.model_dump(), keys, context.log.info)
            run.log_metrics(summary)
            run.log_artifact(paths.index_dir / INDEX_RECORD)
        # The index file of IVF-PQ or HNSW need not be byte-stable; what it holds is fixed by
        # its settings and the shards it was built from.
        record = paths.index_dir / INDEX_RECORD
        settings_file = paths.index_dir / "settings.json"
        settings_file.write_text(json.dumps(config.index.model_dump(), sort_keys=True))
        return materialized(summary, run, [record, settings_file, paths.index_meta])

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
