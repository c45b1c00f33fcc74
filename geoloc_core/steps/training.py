"""Steps: the frozen towers' weights, the backbone-features cache (one shard), and training the
alignment model of the configured variant on the cached features.

The backbone is frozen in every profile (both papers freeze CLIP), so its outputs are computed
once per image by backbone_features and training epochs only run the heads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from geoloc_core.data.manifest import read_manifest
from geoloc_core.encoders.backbone import FeatureSpec
from geoloc_core.encoders.clip_towers import freeze
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
from geoloc_core.training.feature_cache import (
    FeatureCache,
)
from geoloc_core.training.feature_extraction import (
    pick_device,
)
from geoloc_core.training.loop import EpochCallback, EpochResult, LoopConfig, StepCallback, train
from geoloc_core.training.project_inputs import (
    inputs_fingerprint,
    segmentation_source,
    split_data,
)
from geoloc_core.training.validation import retrieval_accuracy

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
