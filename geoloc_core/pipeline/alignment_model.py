"""The alignment model: trained on the cached features, registered in MLflow's model registry."""

from __future__ import annotations

import json
from pathlib import Path

from mlflow.exceptions import MlflowException

from geoloc_core.geo.metrics import DEFAULT_THRESHOLDS_KM
from geoloc_core.pipeline.outcome import RunLog, StepContext, StepOutcome
from geoloc_core.steps.training import HISTORY_FILE, train_model
from geoloc_core.training.loop import CHECKPOINT_NAME, EpochResult

REGISTERED_ALIGNMENT_MODEL = "geoloc-alignment"


def alignment_model(ctx: StepContext) -> StepOutcome:
    paths = ctx.paths
    model = ctx.section("model")
    imported = ctx.section("train").get("imported_model")
    if imported:  # a published model (`geoloc import`) instead of training: docs/imports.md
        from geoloc_core.imports.adopt import adopt_model

        summary = adopt_model(paths, imported)
        ctx.run.set_tags({"variant": summary["variant"], "imported_from": imported})
        ctx.run.log_artifact(paths.model_weights, "model")
        ctx.run.log_artifact(paths.model_config, "model")
        summary["registered_version"] = register_model(ctx.run, summary["variant"], paths.model_dir)
        return StepOutcome(summary, [paths.model_weights, paths.model_config])
    ctx.run.set_tags({"variant": model["variant"]})

    def on_step(step: int, metrics: dict[str, float]) -> None:
        ctx.run.log_metrics(metrics, step=step)

    def on_epoch(result: EpochResult) -> None:
        ctx.log(
            f"epoch {result.epoch}: loss {result.train_loss:.4f}, validation {result.validation}"
        )
        ctx.run.log_metrics(
            {
                "epoch_loss": result.train_loss,
                "lr": result.lr,
                **{f"val_{k}": v for k, v in result.validation.items()},
            },
            step=result.epoch,
        )

    summary = train_model(
        paths,
        model,
        ctx.section("train"),
        DEFAULT_THRESHOLDS_KM,
        fingerprint=ctx.code_version,
        on_step=on_step,
        on_epoch=on_epoch,
    )
    ctx.run.log_artifact(paths.model_weights, "model")
    ctx.run.log_artifact(paths.model_dir / "config.json", "model")
    ctx.run.log_artifact(paths.model_dir / HISTORY_FILE, "model")
    checkpoint = paths.checkpoints("alignment") / CHECKPOINT_NAME
    ctx.run.log_artifact(checkpoint, "checkpoint")
    summary["registered_version"] = register_model(ctx.run, model["variant"], paths.model_dir)
    return StepOutcome(summary, [paths.model_weights, paths.model_dir / "config.json"])


def register_model(run: RunLog, variant: str, model_dir: Path) -> str:
    """Register the logged weights in the MLflow model registry as geoloc-alignment."""
    client = run.client
    try:
        client.get_registered_model(REGISTERED_ALIGNMENT_MODEL)
    except MlflowException:
        client.create_registered_model(REGISTERED_ALIGNMENT_MODEL)
    features = json.loads((model_dir / "config.json").read_text())["features"]
    version = client.create_model_version(
        REGISTERED_ALIGNMENT_MODEL,
        source=f"runs:/{run.run_id}/model",
        run_id=run.run_id,
        tags={
            "variant": variant,
            "backbone": str(features["architecture"]),
            "pretrained": str(features["pretrained"]),
        },
    )
    return str(version.version)
