"""Steps: the frozen towers' weights (an open_clip tag, or the demo's CLIP-style pretraining)
and their outputs per image shard, cached once. Kept apart from the alignment model's training,
so the code the backbone steps run (their code version) does not include the model's."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from geoloc_core.data.loader_settings import LoaderSettings
from geoloc_core.data.manifest import read_manifest
from geoloc_core.encoders.backbone import FeatureSpec
from geoloc_core.encoders.clip_towers import TowerSpec, build_clip, freeze, tower_image_size
from geoloc_core.encoders.settings import BackboneConfig, FeaturesConfig
from geoloc_core.file_hash import digest
from geoloc_core.params import canonical_json
from geoloc_core.paths import ProjectPaths
from geoloc_core.segmentation.sharding import shard_index
from geoloc_core.training.backbone_pretrain import (
    Recipe,
    TrainingImages,
    caption_top1,
    captioned_split,
    clip_loss,
    with_generic_images,
)
from geoloc_core.training.backbone_weights import (
    BackboneRecord,
    backbone_spec,
    file_sha256,
    load_backbone,
    load_towers,
    read_record,
    weights_digest,
    write_record,
)
from geoloc_core.training.feature_cache import remove_other_layouts
from geoloc_core.training.feature_extraction import (
    compute_feature_shard,
    manifest_items,
    pick_device,
    shard_items,
)
from geoloc_core.training.loop import EpochCallback, LoopConfig, StepCallback, train

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
    """Record the towers' weights: an open_clip tag or a transformers checkpoint as given, or
    the demo's own pretraining."""
    cfg = BackboneConfig.from_section(backbone_section)
    if not cfg.pretrains:
        load_backbone(cfg, paths.root)  # fetches and checks the weights and their activation
        digest_of = weights_digest(backbone_spec(cfg, paths.root))
        record = BackboneRecord(
            cfg.architecture, str(cfg.pretrained), digest_of, cfg.implementation
        )
        write_record(paths.root, record)
        return {"pretrained": 0, "epochs": 0}
    torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    towers = build_clip(TowerSpec(cfg.architecture, None))
    manifest = read_manifest(paths.reference_manifest)
    reference, ref_failed = captioned_split(paths.root, manifest, "reference", towers)
    validation, val_failed = captioned_split(paths.root, manifest, "validation", towers)

    def validate() -> dict[str, float]:
        return {"caption_top1": caption_top1(towers, validation)} if len(validation) else {}

    recipe = Recipe(
        cfg.pretrain_augment, cfg.pretrain_augment_share, cfg.pretrain_views_weight, cfg.seed
    )
    generic = round(cfg.pretrain_generic_share * len(reference))
    history = train(
        towers.model,
        TrainingImages(
            with_generic_images(reference, generic, cfg.seed, towers.tokenizer),
            recipe,
        ),
        lambda batch: clip_loss(towers, batch, recipe.views_weight),
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
        "generic_images": generic,
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
    loader_section: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One shard of the frozen towers' outputs for every reference and benchmark image;
    loader_section (params `loader`): the worker processes that decode the images."""
    cfg = FeaturesConfig.from_section(features_section)
    loader = LoaderSettings.from_section(loader_section) if loader_section else LoaderSettings()
    shard = shard_index(shard_key, cfg.n_shards, "features.n_shards")
    record = read_record(paths.root)
    spec = FeatureSpec(
        record.architecture,
        record.pretrained,
        cfg.token_grid,
        record.weights_sha256,
        record.implementation,
        cfg.precision,
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
        tower_image_size(record.tower_spec(paths.root)),
        items,
        shard,
        cfg.n_shards,
        cfg.batch_size,
        log,
        loader.options(on_cuda=device.type == "cuda"),
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
