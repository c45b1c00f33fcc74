"""The frozen towers' weights: an open_clip tag, or the demo's CLIP-style pretraining."""

from __future__ import annotations

from geoloc_core.pipeline.outcome import StepContext, StepOutcome
from geoloc_core.steps.backbone import build_backbone_weights
from geoloc_core.training.backbone_weights import read_record
from geoloc_core.training.loop import EpochResult


def backbone_weights(ctx: StepContext) -> StepOutcome:
    paths = ctx.paths

    def on_step(step: int, metrics: dict[str, float]) -> None:
        ctx.run.log_metrics(metrics, step=step)

    def on_epoch(result: EpochResult) -> None:
        ctx.log(
            f"pretraining epoch {result.epoch}: loss {result.train_loss:.4f}, "
            f"validation {result.validation}"
        )
        validation = {f"val_{k}": v for k, v in result.validation.items()}
        ctx.run.log_metrics({"epoch_loss": result.train_loss, **validation}, step=result.epoch)

    summary = build_backbone_weights(
        paths,
        ctx.section("backbone"),
        fingerprint=ctx.code_version,
        on_step=on_step,
        on_epoch=on_epoch,
    )
    record = read_record(paths.root)
    ctx.run.log_artifact(paths.backbone_record, "backbone")
    ctx.run.log_metrics(summary)
    extra = {
        "architecture": record.architecture,
        "pretrained": record.pretrained,
        "weights_sha256": record.weights_sha256,
    }
    return StepOutcome(summary, data_version=record.weights_sha256, metadata=extra)
