"""Saving and loading a trained alignment model with what it needs to embed a new image.

config.json holds the model settings, the input sizes and the FeatureSpec (which backbone and
weights made its inputs), so `geoloc predict` can rebuild the same features for any file.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from geoloc_core.encoders.backbone import FeatureSpec
from geoloc_core.file_hash import check_sha256, file_sha256
from geoloc_core.models.alignment import GeoAlignmentModel, InputShapes
from geoloc_core.models.config import ARCHITECTURE_KEYS_SINCE_V1, ModelConfig

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"


@dataclass
class TrainedModel:
    model: GeoAlignmentModel
    features: FeatureSpec
    image_size: int


def save_model(directory: Path, trained: TrainedModel) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f"{MODEL_FILE}.tmp"
    torch.save(trained.model.state_dict(), tmp)
    tmp.replace(directory / MODEL_FILE)
    config = {
        "weights_sha256": file_sha256(directory / MODEL_FILE),
        "model": _saved_model_settings(trained.model.config),
        "shapes": dataclasses.asdict(trained.model.shapes),
        "features": trained.features.to_record(),
        "image_size": trained.image_size,
    }
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _saved_model_settings(config: ModelConfig) -> dict:
    """The model settings as config.json keeps them: keys added since the first format are
    left out while they hold the value that format implied, so an unchanged model's file is
    unchanged; load_model puts them back."""
    values = config.model_dump()
    for key, implied in ARCHITECTURE_KEYS_SINCE_V1.items():
        if values[key] == implied:
            del values[key]
    return values


def load_model(directory: Path) -> TrainedModel:
    """The trained model in eval mode; weights from the saved state only (no GeoCLIP re-init)."""
    directory = Path(directory)
    weights, config_file = directory / MODEL_FILE, directory / CONFIG_FILE
    if not weights.is_file() or not config_file.is_file():
        raise FileNotFoundError(
            f"no trained model in {directory}: materialize alignment_model first"
        )
    saved = json.loads(config_file.read_text())
    try:
        config = ModelConfig.from_section({**ARCHITECTURE_KEYS_SINCE_V1, **saved["model"]})
        shapes = InputShapes(**saved["shapes"])
        features = FeatureSpec(**saved["features"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"{config_file} was written by an older model format ({exc}): "
            "re-materialize alignment_model"
        ) from exc
    check_sha256(weights, saved.get("weights_sha256"), "re-materialize alignment_model")
    model = GeoAlignmentModel(config, shapes)
    model.load_state_dict(torch.load(weights, weights_only=True, map_location="cpu"))
    model.eval()
    return TrainedModel(model, features, int(saved["image_size"]))
