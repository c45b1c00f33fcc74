"""Step: train the alignment model on the reference split, validating on the validation split."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from geoloc_core.data.images import load_batch
from geoloc_core.data.manifest import read_manifest
from geoloc_core.geo.distance import geodesic_km
from geoloc_core.geo.metrics import summarize_errors
from geoloc_core.models.alignment import ImageGPSAlignment
from geoloc_core.models.config import ModelConfig, TrainConfig
from geoloc_core.paths import ProjectPaths
from geoloc_core.retrieval.index import build_flat_index
from geoloc_core.retrieval.predict import predict_nearest
from geoloc_core.training.embed import embed_images
from geoloc_core.training.loop import EpochCallback, StepCallback, train_alignment

MODEL_CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"


def load_split_images(
    paths: ProjectPaths, manifest: pd.DataFrame, split: str, size: int
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, list]:
    rows = manifest[manifest["split"] == split].reset_index(drop=True)
    images, positions, failures = load_batch(
        rows["id"].tolist(), [paths.root / p for p in rows["image"]], size
    )
    rows = rows.iloc[positions].reset_index(drop=True)
    return images, rows[["lat", "lon"]].to_numpy(np.float64), rows, failures


def retrieval_accuracy(
    model: ImageGPSAlignment,
    reference_images: np.ndarray,
    reference_latlon: np.ndarray,
    query_images: np.ndarray,
    query_latlon: np.ndarray,
    thresholds_km: tuple[float, ...],
) -> dict[str, float]:
    index = build_flat_index(embed_images(model, reference_images))
    predicted = predict_nearest(index, reference_latlon, embed_images(model, query_images), 1)
    errors = geodesic_km(query_latlon[:, 0], query_latlon[:, 1], predicted.lat, predicted.lon)
    return summarize_errors(errors, thresholds_km)


def train_model(
    paths: ProjectPaths,
    model_section: Mapping[str, Any],
    train_section: Mapping[str, Any],
    thresholds_km: tuple[float, ...],
    fingerprint: str,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
    stop_after_epoch: int | None = None,
) -> dict[str, Any]:
    model_cfg = ModelConfig.from_mapping(model_section)
    train_cfg = TrainConfig.from_mapping(train_section)
    torch.set_num_threads(train_cfg.num_threads)
    model = ImageGPSAlignment(model_cfg, seed=train_cfg.seed)
    manifest = read_manifest(paths.reference_manifest)
    ref_images, ref_latlon, _, ref_failures = load_split_images(
        paths, manifest, "reference", model.image_size
    )
    val_images, val_latlon, _, val_failures = load_split_images(
        paths, manifest, "validation", model.image_size
    )

    def validate(current: ImageGPSAlignment) -> dict[str, float]:
        if len(val_images) == 0:
            return {}
        return retrieval_accuracy(
            current, ref_images, ref_latlon, val_images, val_latlon, thresholds_km
        )

    history = train_alignment(
        model,
        ref_images,
        ref_latlon,
        train_cfg,
        paths.checkpoints,
        validator=validate,
        on_step=on_step,
        on_epoch=on_epoch,
        stop_after_epoch=stop_after_epoch,
        fingerprint=fingerprint,
    )
    save_model(paths, model)
    pd.DataFrame(
        [
            {
                "epoch": h.epoch,
                "train_loss": h.train_loss,
                "temperature": h.temperature,
                "lr": h.lr,
                **{f"val_{k}": v for k, v in h.validation.items()},
            }
            for h in history
        ]
    ).to_csv(paths.model_dir / HISTORY_FILE, index=False, float_format="%.6f", lineterminator="\n")
    last = history[-1]
    return {
        "epochs": last.epoch,
        "train_loss": last.train_loss,
        "temperature": last.temperature,
        "reference_images": len(ref_images),
        "validation_images": len(val_images),
        "failed_images": len(ref_failures) + len(val_failures),
        **{f"val_{k}": v for k, v in last.validation.items()},
    }


def save_model(paths: ProjectPaths, model: ImageGPSAlignment) -> None:
    paths.model_dir.mkdir(parents=True, exist_ok=True)
    tmp = paths.model_weights.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(paths.model_weights)
    config = dataclasses.asdict(model.config)
    (paths.model_dir / MODEL_CONFIG_FILE).write_text(
        json.dumps(config, indent=2, sort_keys=True) + "\n"
    )


def load_model(paths: ProjectPaths) -> ImageGPSAlignment:
    """The trained model; architecture from its saved config, weights from the saved state only."""
    config_file = paths.model_dir / MODEL_CONFIG_FILE
    if not paths.model_weights.is_file() or not config_file.is_file():
        raise FileNotFoundError(
            f"no trained model in {paths.model_dir}: materialize alignment_model first"
        )
    config = ModelConfig.from_mapping(json.loads(config_file.read_text()))
    model = ImageGPSAlignment(dataclasses.replace(config, pretrained=None))
    model.load_state_dict(torch.load(paths.model_weights, weights_only=True))
    model.eval()
    return model
