"""Backbone assets: the frozen towers' weights and their outputs per image, cached once.

backbone_weights records which weights the image/text towers have (an open_clip tag, or the
demo's CLIP-style pretraining on the reference split); backbone_features runs the frozen image
tower once per reference and benchmark image, one partition per shard of image ids, so no
training epoch, index build or benchmark query ever runs the backbone again.
"""

from typing import Any

import dagster as dg

from geoloc_assets import settings as asset_settings
from geoloc_assets.assets.common import AUTOMATION, result_metadata
from geoloc_assets.partitions import GPU_POOL, GPU_STEP_TAGS
from geoloc_assets.resources import MlflowTracker, ProjectResource
from geoloc_assets.settings import asset_config, code_version
from geoloc_core.models.config import FeaturesConfig
from geoloc_core.params import section
from geoloc_core.segmentation.sharding import shard_keys

GROUP = "features"
WIRING = {
    "backbone_weights": ('("backbone",)', "1"),
    "backbone_features": ('("features", "benchmarks")', "1"),
}


def require_wiring(assets: dict[str, tuple[str, str]]) -> None:
    """Each asset's params sections and logic version live in geoloc_assets/settings.py."""
    for name, (sections, version) in assets.items():
        missing = [
            table
            for table, entries in (
                ("ASSET_SECTIONS", asset_settings.ASSET_SECTIONS),
                ("LOGIC_VERSIONS", asset_settings.LOGIC_VERSIONS),
            )
            if name not in entries
        ]
        if missing:
            raise KeyError(
                f"geoloc_assets/settings.py has no '{name}' entry in {missing}: add "
                f'ASSET_SECTIONS["{name}"] = {sections} and LOGIC_VERSIONS["{name}"] = '
                f'"{version}" (see README, Model)'
            )


def feature_shard_partitions(params: dict[str, Any]) -> dg.StaticPartitionsDefinition:
    """Shards of image ids shared by backbone_features and reference_embeddings (identity)."""
    n_shards = FeaturesConfig.from_section(section(params, "features")).n_shards
    return dg.StaticPartitionsDefinition(shard_keys(n_shards))


def build_feature_assets(
    params: dict[str, Any], feature_shards: dg.StaticPartitionsDefinition
) -> list:
    require_wiring(WIRING)
    weights_config = asset_config("backbone_weights", params)
    features_config = asset_config("backbone_features", params)
    weights_version = code_version("backbone_weights", params)
    n_shards = FeaturesConfig.from_section(section(params, "features")).n_shards

    @dg.asset(
        group_name=GROUP,
        automation_condition=AUTOMATION,
        deps=["reference_manifest", "place_texts"],
        code_version=weights_version,
        pool=GPU_POOL,
        op_tags=GPU_STEP_TAGS,
        description=(
            "The frozen image/text towers' weights: an open_clip tag (full profile: ViT-L-14 "
            "openai), or the demo's CLIP-style pretraining on reference images and captions."
        ),
    )
    def backbone_weights(
        context: dg.AssetExecutionContext,
        config: weights_config,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        from geoloc_core.steps.training import build_backbone_weights
        from geoloc_core.training.backbone_weights import backbone_directory, read_record

        paths = project.paths
        with mlflow_tracker.asset_run(context, config.model_dump()) as run:

            def on_step(step: int, metrics: dict[str, float]) -> None:
                run.log_metrics(metrics, step=step)

            def on_epoch(result) -> None:
                context.log.info(
                    f"pretraining epoch {result.epoch}: loss {result.train_loss:.4f}, "
                    f"validation {result.validation}"
                )
                run.log_metrics(
                    {"epoch_loss": result.train_loss, **_prefixed(result.validation)},
                    step=result.epoch,
                )

            summary = build_backbone_weights(
                paths,
                config.backbone.model_dump(),
                fingerprint=weights_version,
                on_step=on_step,
                on_epoch=on_epoch,
            )
            record = read_record(paths.root)
            run.log_artifact(backbone_directory(paths.root) / "backbone.json", "backbone")
            run.log_metrics(summary)
        metadata = result_metadata(summary, run)
        metadata.update(
            architecture=record.architecture,
            pretrained=record.pretrained,
            weights_sha256=record.weights_sha256,
        )
        return dg.MaterializeResult(
            metadata=metadata, data_version=dg.DataVersion(record.weights_sha256)
        )

    @dg.asset(
        group_name=GROUP,
        automation_condition=AUTOMATION,
        deps=[
            dg.AssetDep(backbone_weights),
            dg.AssetDep("reference_manifest"),
            dg.AssetDep("benchmark_manifest", partition_mapping=dg.AllPartitionMapping()),
        ],
        partitions_def=feature_shards,
        code_version=code_version("backbone_features", params),
        pool=GPU_POOL,
        op_tags=GPU_STEP_TAGS,
        description=(
            "Frozen image tower outputs (pooled embedding + pooled patch-token grid, fp16) for "
            "every reference and benchmark image, one directory per shard of image ids."
        ),
    )
    def backbone_features(
        context: dg.AssetExecutionContext,
        config: features_config,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        from geoloc_core.steps.training import build_backbone_features

        shard = context.partition_key
        features = config.features.model_dump()
        if features["n_shards"] != n_shards:
            raise ValueError(
                f"features.n_shards={features['n_shards']} in the run config, but the "
                f"partitions were built for {n_shards}: change n_shards in params.yaml instead"
            )
        with mlflow_tracker.asset_run(context, config.model_dump(), {"shard": shard}) as run:
            summary = build_backbone_features(
                project.paths, features, list(config.benchmarks.names), shard, context.log.info
            )
            run.log_metrics(summary)
            context.log.info(f"backbone features shard {shard}: {summary}")
        return dg.MaterializeResult(
            metadata=result_metadata(summary, run),
            data_version=dg.DataVersion(summary["digest"]),
        )

    return [backbone_weights, backbone_features]


def _prefixed(validation: dict[str, float]) -> dict[str, float]:
    return {f"val_{k}": v for k, v in validation.items()}
