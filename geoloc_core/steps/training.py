"""Steps: the frozen towers' weights, the backbone-features cache (one shard), and training the
alignment model of the configured variant on the cached features.

The backbone is frozen in every profile (both papers freeze CLIP), so its outputs are computed
once per image by backbone_features and training epochs only run the heads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from geoloc_core.data.manifest import read_manifest
from geoloc_core.encoders.backbone import FeatureSpec
from geoloc_core.encoders.clip_towers import freeze
from geoloc_core.encoders.text import embed_texts
from geoloc_core.file_hash import digest
from geoloc_core.models.alignment import GeoAlignmentModel, InputShapes
from geoloc_core.models.config import ModelConfig, TrainConfig
from geoloc_core.models.inputs import SegmentationSource
from geoloc_core.models.persistence import TrainedModel, load_model, save_model
from geoloc_core.models.variants import variant_spec
from geoloc_core.params import canonical_json
from geoloc_core.paths import ProjectPaths
from geoloc_core.training.backbone_weights import (
    BackboneRecord,
    load_towers,
)
from geoloc_core.training.captions import caption_embeddings, captions_for
from geoloc_core.training.dataset import AlignmentData
from geoloc_core.training.distributed import (
    ProcessTeam,
    RankShare,
    gathered_loss,
    launch,
    replay,
)
from geoloc_core.training.feature_cache import (
    FeatureCache,
)
from geoloc_core.training.feature_extraction import (
    pick_device,
)
from geoloc_core.training.loop import EpochCallback, EpochResult, LoopConfig, StepCallback, train
from geoloc_core.training.malloc import return_large_blocks
from geoloc_core.training.precision import Precision
from geoloc_core.training.project_inputs import (
    inputs_fingerprint,
    segmentation_source,
    split_data,
)
from geoloc_core.training.shard_plan import plan_shards
from geoloc_core.training.shard_stream import ShardStream
from geoloc_core.training.validation import retrieval_accuracy, streamed_retrieval_accuracy

HISTORY_FILE = "history.csv"
Log = Callable[[str], None]


# --- alignment_model ----------------------------------------------------------------------------


def train_model(
    paths: ProjectPaths,
    model_section: Mapping[str, Any],
    train_section: Mapping[str, Any],
    thresholds_km: tuple[float, ...],
    fingerprint: str,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
    stop_after_epoch: int | None = None,
    segmentation: SegmentationSource | None = None,
    progress: bool = True,
    team: ProcessTeam | None = None,
    team_device: str | None = None,
    max_steps_per_epoch: int | None = None,
) -> dict[str, Any]:
    """Train the configured variant; segmentation: a source to use instead of the project cache.

    train.devices > 1 runs this on that many processes under torchrun (training/distributed.py,
    which passes each process's team and device); train.order: shards reads the features as a
    stream (training/shard_stream.py)."""
    model_cfg = ModelConfig.from_section(model_section)
    train_cfg = TrainConfig.from_section(train_section)
    if train_cfg.devices > 1 and team is None:
        if segmentation is not None:
            raise ValueError(
                "train.devices > 1 trains in torchrun processes, which read the project's "
                "segmentation cache: pass no other segmentation source, or set train.devices: 1"
            )
        return _train_distributed(
            paths, model_section, train_section, thresholds_km, fingerprint,
            train_cfg.devices, on_step, on_epoch, stop_after_epoch,
        )  # fmt: skip
    spec = variant_spec(model_cfg.variant)
    torch.set_num_threads(train_cfg.num_threads)
    features = FeatureCache(paths.features_dir)
    meta = features.meta
    own_segmentation = spec.uses_segmentation and segmentation is None
    if not spec.uses_segmentation:
        segmentation = None
    elif segmentation is None:
        segmentation = segmentation_source(paths)
    device = torch.device(team_device) if team_device else pick_device(train_cfg.device)
    Precision(train_cfg.amp, device)  # refuses fp16 off CUDA before any work
    if train_cfg.order == "shards":
        return_large_blocks()  # a peak that does not depend on the allocation history
        inputs = _streamed_inputs(paths, features, segmentation, own_segmentation, spec.uses_text)
    else:
        inputs = _global_inputs(paths, features, segmentation, spec.uses_text)
    shapes = InputShapes(meta["pooled_dim"], meta["token_dim"], meta["tokens"], inputs.text_dim)
    model = GeoAlignmentModel(model_cfg, shapes, seed=train_cfg.seed)
    if model_cfg.gps_init:
        model.init_gps_from_geoclip(paths.root)
    model.to(device)

    def validate() -> dict[str, float]:
        if len(inputs.validation) == 0:
            return {}
        if isinstance(inputs.reference, ShardStream):
            return streamed_retrieval_accuracy(
                model, inputs.reference, inputs.validation, thresholds_km
            )
        return retrieval_accuracy(model, inputs.reference, inputs.validation, thresholds_km)

    data: Any = inputs.training
    loss_fn: Callable[[Any], Any] = lambda batch: model.loss(  # noqa: E731
        batch.to(device), train_cfg.same_place_km
    )
    if team is not None:
        data = RankShare(inputs.training, team.rank, team.world)
        loss_fn = lambda share: gathered_loss(  # noqa: E731
            model, share.to(device), train_cfg.same_place_km
        )
    history = train(
        model,
        data,
        loss_fn,
        LoopConfig(
            seed=train_cfg.seed,
            epochs=train_cfg.epochs,
            batch_size=train_cfg.batch_size,
            lr=train_cfg.lr_for(model_cfg.variant),
            weight_decay=train_cfg.weight_decay,
            lr_step_gamma=train_cfg.lr_step_gamma,
            num_threads=train_cfg.num_threads,
            device=str(device),
            amp=train_cfg.amp,
            checkpoint_every_steps=train_cfg.checkpoint_every_steps,
        ),
        paths.checkpoints("alignment"),
        digest(
            fingerprint,
            canonical_json([dict(model_section), dict(train_section)]),
            inputs_fingerprint(paths, spec.uses_text),
        ),
        validator=validate if team is None or team.writes else None,
        on_step=on_step,
        on_epoch=on_epoch,
        stop_after_epoch=stop_after_epoch,
        progress=progress,
        team=team,
        max_steps_per_epoch=max_steps_per_epoch,
    )
    model.cpu()
    if team is None or team.writes:
        save_model(paths.model_dir, TrainedModel(model, features.spec(), int(meta["image_size"])))
        write_history(history, paths.model_dir / HISTORY_FILE)
    last = history[-1]
    return {
        "variant": model_cfg.variant,
        "epochs": last.epoch,
        "train_loss": last.train_loss,
        **{f"temperature_{k}": v for k, v in last.temperatures.items()},
        "reference_images": len(inputs.reference),
        "validation_images": len(inputs.validation),
        "images_without_inputs": inputs.dropped,
        **{f"val_{k}": v for k, v in last.validation.items()},
    }


@dataclass
class _Inputs:
    training: Any  # the batch source the loop reads (AlignmentData or ShardStream)
    reference: Any  # the reference set validation searches (the same data, without captions)
    validation: Any  # the held-out queries, of the same kind as reference
    dropped: int  # manifest rows of either split that lacked an input
    text_dim: int


def _global_inputs(
    paths: ProjectPaths,
    features: FeatureCache,
    segmentation: SegmentationSource | None,
    uses_text: bool,
) -> _Inputs:
    """train.order: global: every split row's id and inputs in memory (the demo's order)."""
    available = set(features.ids())
    if segmentation is not None:
        available &= set(segmentation.ids())
    manifest = read_manifest(paths.reference_manifest)
    reference, ref_dropped = split_data(manifest, "reference", features, segmentation, available)
    validation, val_dropped = split_data(manifest, "validation", features, segmentation, available)
    training, text_dim = reference, 0
    if uses_text:
        towers = freeze(load_towers(paths.root, _record_of(features.spec())))
        captions = captions_for(paths.place_texts, reference.ids)
        text_features, index = caption_embeddings(towers, captions)
        del towers
        text_dim = int(text_features.shape[1])
        training = AlignmentData(
            reference.ids, features, segmentation, reference.latlon, text_features, index
        )
    return _Inputs(training, reference, validation, ref_dropped + val_dropped, text_dim)


def _streamed_inputs(
    paths: ProjectPaths,
    features: FeatureCache,
    segmentation: SegmentationSource | None,
    own_segmentation: bool,
    uses_text: bool,
) -> _Inputs:
    """train.order: shards: a plan of fixed-size numbers per sample (training/shard_plan.py)."""
    failed: set[str] = set()
    if segmentation is not None:
        failures = getattr(segmentation, "failures", None)  # small; ids() would be every id
        failed = set(failures()) if failures else set(features.ids()) - set(segmentation.ids())
    scratch = paths.checkpoints("alignment")
    scratch.mkdir(parents=True, exist_ok=True)
    plan = plan_shards(
        features,
        paths.reference_manifest,
        "reference",
        "validation",
        failed,
        paths.place_texts if uses_text else None,
        scratch,
    )
    text_features, text_dim = None, 0
    if uses_text and plan.captions is not None:
        towers = freeze(load_towers(paths.root, _record_of(features.spec())))
        text_features = embed_texts(towers, plan.captions, 256)
        del towers
        text_dim = int(text_features.shape[1])
    opener = None
    if segmentation is not None:  # the project's cache: opened afresh for each shard
        opener = (lambda: segmentation_source(paths)) if own_segmentation else lambda: segmentation
    training = ShardStream(features, plan.parts, text_features, opener)
    reference = ShardStream(features, plan.parts, None, opener)
    validation = ShardStream(features, plan.validation, None, opener)
    return _Inputs(training, reference, validation, plan.dropped, text_dim)


def _train_distributed(
    paths: ProjectPaths,
    model_section: Mapping[str, Any],
    train_section: Mapping[str, Any],
    thresholds_km: tuple[float, ...],
    fingerprint: str,
    nproc: int,
    on_step: StepCallback | None,
    on_epoch: EpochCallback | None,
    stop_after_epoch: int | None,
) -> dict[str, Any]:
    """torchrun with nproc processes; then the steps and epochs process 0 recorded, replayed
    to the callbacks (MLflow logging runs here, in the step's process)."""
    device = train_section.get("device")
    gpus = torch.cuda.device_count()
    if device == "cuda" and gpus < nproc:
        raise ValueError(
            f"train.devices={nproc} asks for one GPU a process, but this machine has {gpus}: "
            f"set train.devices to at most {max(gpus, 1)}"
        )
    workdir = paths.checkpoints("alignment") / "distributed"
    request = {
        "root": str(paths.root),
        "model": dict(model_section),
        "train": dict(train_section),
        "thresholds_km": list(thresholds_km),
        "fingerprint": fingerprint,
        "stop_after_epoch": stop_after_epoch,
    }
    result = launch(request, nproc, workdir)
    replay(workdir, on_step, on_epoch)
    return result


def _record_of(spec: FeatureSpec) -> BackboneRecord:
    """The towers that made the cached features (the text tower must be the same model)."""
    return BackboneRecord(
        spec.architecture, str(spec.pretrained), spec.weights_sha256, spec.implementation
    )


def write_history(history: list[EpochResult], path: Path) -> None:
    rows = [
        {
            "epoch": h.epoch,
            "train_loss": h.train_loss,
            "lr": h.lr,
            **{f"loss_{k}": v for k, v in h.terms.items()},
            **{f"temperature_{k}": v for k, v in h.temperatures.items()},
            **{f"val_{k}": v for k, v in h.validation.items()},
        }
        for h in history
    ]
    pd.DataFrame(rows).to_csv(path, index=False, float_format="%.6f", lineterminator="\n")


def load_trained(paths: ProjectPaths) -> TrainedModel:
    return load_model(paths.model_dir)
