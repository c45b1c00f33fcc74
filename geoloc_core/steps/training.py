"""Steps: the frozen towers' weights, the backbone-features cache (one shard), and training the
alignment model of the configured variant on the cached features.

The backbone is frozen in every profile (both papers freeze CLIP), so its outputs are computed
once per image by backbone_features and training epochs only run the heads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from geoloc_core.data.manifest import read_manifest
from geoloc_core.encoders.backbone import FeatureSpec
from geoloc_core.encoders.clip_towers import TowerSpec, architecture_image_size, build_clip, freeze
from geoloc_core.models.alignment import GeoAlignmentModel, InputShapes
from geoloc_core.models.config import BackboneConfig, FeaturesConfig, ModelConfig, TrainConfig
from geoloc_core.models.inputs import SegmentationSource
from geoloc_core.models.persistence import TrainedModel, load_model, save_model
from geoloc_core.models.variants import variant_spec
from geoloc_core.params import canonical_json
from geoloc_core.paths import ProjectPaths
from geoloc_core.segmentation.sharding import shard_index
from geoloc_core.training.backbone_pretrain import (
    caption_top1,
    captioned_split,
    clip_loss,
)
from geoloc_core.training.backbone_weights import (
    BackboneRecord,
    file_sha256,
    load_towers,
    read_record,
    write_record,
)
from geoloc_core.training.captions import caption_embeddings, captions_for
from geoloc_core.training.dataset import AlignmentData
from geoloc_core.training.feature_cache import (
    FeatureCache,
    remove_other_layouts,
)
from geoloc_core.training.feature_extraction import (
    compute_feature_shard,
    manifest_items,
    pick_device,
    shard_items,
)
from geoloc_core.training.loop import EpochCallback, EpochResult, LoopConfig, StepCallback, train
from geoloc_core.training.project_inputs import (
    digest,
    inputs_fingerprint,
    segmentation_source,
    split_data,
)
from geoloc_core.training.validation import retrieval_accuracy

HISTORY_FILE = "history.csv"
Log = Callable[[str], None]


# --- backbone_weights ---------------------------------------------------------------------------


def build_backbone_weights(
    paths: ProjectPaths,
    backbone_section: Mapping[str, Any],
    fingerprint: str,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
    stop_after_epoch: int | None = None,
) -> dict[str, Any]:
    """Record the towers' weights: an open_clip tag as given, or the demo's own pretraining."""
    cfg = BackboneConfig.from_section(backbone_section)
    if not cfg.pretrains:
        build_clip(TowerSpec(cfg.architecture, cfg.pretrained))  # fetches and checks the weights
        tag = str(cfg.pretrained)
        write_record(paths.root, BackboneRecord(cfg.architecture, tag, f"tag:{tag}"))
        return {"pretrained": 0, "epochs": 0}
    torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    towers = build_clip(TowerSpec(cfg.architecture, None))
    manifest = read_manifest(paths.reference_manifest)
    reference, ref_failed = captioned_split(paths.root, manifest, "reference", towers)
    validation, val_failed = captioned_split(paths.root, manifest, "validation", towers)

    def validate() -> dict[str, float]:
        return {"caption_top1": caption_top1(towers, validation)} if len(validation) else {}

    history = train(
        towers.model,
        reference,
        lambda batch: clip_loss(towers, batch),
        LoopConfig(
            seed=cfg.seed,
            epochs=cfg.pretrain_epochs,
            batch_size=cfg.pretrain_batch_size,
            lr=cfg.pretrain_lr,
            weight_decay=cfg.pretrain_weight_decay,
            lr_step_gamma=1.0,
            num_threads=cfg.num_threads,
        ),
        paths.checkpoints("backbone"),
        digest(
            fingerprint,
            canonical_json(cfg.model_dump()),
            file_sha256(paths.reference_manifest),
            file_sha256(paths.place_texts),
        ),
        validator=validate,
        on_step=on_step,
        on_epoch=on_epoch,
        stop_after_epoch=stop_after_epoch,
    )
    weights = paths.backbone_dir / f"{cfg.architecture}-reference-clip.pt"
    weights.parent.mkdir(parents=True, exist_ok=True)
    tmp = weights.with_suffix(".tmp")
    torch.save(towers.model.state_dict(), tmp)
    tmp.replace(weights)
    relative = weights.relative_to(paths.root).as_posix()
    write_record(paths.root, BackboneRecord(cfg.architecture, relative, file_sha256(weights)))
    last = history[-1]
    return {
        "pretrained": 1,
        "epochs": last.epoch,
        "train_loss": last.train_loss,
        "reference_images": len(reference),
        "validation_images": len(validation),
        "failed_images": ref_failed + val_failed,
        **{f"val_{k}": v for k, v in last.validation.items()},
    }


# --- backbone_features --------------------------------------------------------------------------


def build_backbone_features(
    paths: ProjectPaths,
    features_section: Mapping[str, Any],
    benchmarks: Sequence[str],
    shard_key: str,
    log: Log = print,
) -> dict[str, Any]:
    """One shard of the frozen towers' outputs for every reference and benchmark image."""
    cfg = FeaturesConfig.from_section(features_section)
    shard = shard_index(shard_key, cfg.n_shards, "features.n_shards")
    record = read_record(paths.root)
    spec = FeatureSpec(
        record.architecture, record.pretrained, cfg.token_grid, record.weights_sha256
    )
    directory = paths.features_dir
    for removed in remove_other_layouts(directory, cfg.n_shards):
        log(f"removed {removed} (another features.n_shards)")
    items = shard_items(manifest_items(paths, benchmarks), cfg.n_shards, shard)
    torch.set_num_threads(cfg.num_threads)
    device = pick_device(cfg.device)
    outcome = compute_feature_shard(
        directory,
        lambda: freeze(load_towers(paths.root, record, str(device))),
        spec,
        architecture_image_size(record.architecture),
        items,
        shard,
        cfg.n_shards,
        cfg.batch_size,
        log,
    )
    done = outcome.images if not outcome.kept else 0
    return {
        "images": outcome.images,
        "failures": len(outcome.failures),
        "kept": int(outcome.kept),
        "seconds": outcome.seconds,
        "images_per_second": done / outcome.seconds if done and outcome.seconds else 0.0,
        "digest": outcome.digest,
        "path": str(outcome.path),
    }


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
) -> dict[str, Any]:
    """Train the configured variant; segmentation: a source to use instead of the project cache."""
    model_cfg = ModelConfig.from_section(model_section)
    train_cfg = TrainConfig.from_section(train_section)
    spec = variant_spec(model_cfg.variant)
    torch.set_num_threads(train_cfg.num_threads)
    features = FeatureCache(paths.features_dir)
    meta = features.meta
    if not spec.uses_segmentation:
        segmentation = None
    elif segmentation is None:
        segmentation = segmentation_source(paths)
    available = set(features.ids())
    if segmentation is not None:
        available &= set(segmentation.ids())
    manifest = read_manifest(paths.reference_manifest)
    reference, ref_dropped = split_data(manifest, "reference", features, segmentation, available)
    validation, val_dropped = split_data(manifest, "validation", features, segmentation, available)
    training, text_dim = reference, 0
    if spec.uses_text:
        towers = freeze(load_towers(paths.root, _record_of(features.spec())))
        captions = captions_for(paths.place_texts, reference.ids)
        text_features, index = caption_embeddings(towers, captions)
        del towers
        text_dim = int(text_features.shape[1])
        training = AlignmentData(
            reference.ids, features, segmentation, reference.latlon, text_features, index
        )
    shapes = InputShapes(meta["pooled_dim"], meta["token_dim"], meta["tokens"], text_dim)
    model = GeoAlignmentModel(model_cfg, shapes, seed=train_cfg.seed)
    if model_cfg.gps_init:
        model.init_gps_from_geoclip(paths.root)
    device = pick_device(train_cfg.device)
    model.to(device)

    def validate() -> dict[str, float]:
        if len(validation) == 0:
            return {}
        return retrieval_accuracy(model, reference, validation, thresholds_km)

    history = train(
        model,
        training,
        lambda batch: model.loss(batch.to(device), train_cfg.same_place_km),
        LoopConfig(
            seed=train_cfg.seed,
            epochs=train_cfg.epochs,
            batch_size=train_cfg.batch_size,
            lr=train_cfg.lr_for(model_cfg.variant),
            weight_decay=train_cfg.weight_decay,
            lr_step_gamma=train_cfg.lr_step_gamma,
            num_threads=train_cfg.num_threads,
        ),
        paths.checkpoints("alignment"),
        digest(
            fingerprint,
            canonical_json([dict(model_section), dict(train_section)]),
            inputs_fingerprint(paths, spec.uses_text),
        ),
        validator=validate,
        on_step=on_step,
        on_epoch=on_epoch,
        stop_after_epoch=stop_after_epoch,
        progress=progress,
    )
    model.cpu()
    save_model(paths.model_dir, TrainedModel(model, features.spec(), int(meta["image_size"])))
    write_history(history, paths.model_dir / HISTORY_FILE)
    last = history[-1]
    return {
        "variant": model_cfg.variant,
        "epochs": last.epoch,
        "train_loss": last.train_loss,
        **{f"temperature_{k}": v for k, v in last.temperatures.items()},
        "reference_images": len(reference),
        "validation_images": len(validation),
        "images_without_inputs": ref_dropped + val_dropped,
        **{f"val_{k}": v for k, v in last.validation.items()},
    }


def _record_of(spec: FeatureSpec) -> BackboneRecord:
    """The towers that made the cached features (the text tower must be the same model)."""
    return BackboneRecord(spec.architecture, str(spec.pretrained), spec.weights_sha256)


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
