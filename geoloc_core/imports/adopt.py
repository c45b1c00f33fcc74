"""An imported model as the alignment_model step's output (params train.imported_model).

The step copies the import's model (weights and config.json, bytes unchanged) into
artifacts/model after checking the import's record and that the model's frozen backbone is the
one the graph's features come from, so everything downstream (embeddings, index, candidates,
re-rank, LMM, verification, predict, the served model) runs on it as on a trained model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from geoloc_core.encoders.backbone import FeatureSpec
from geoloc_core.file_hash import file_sha256
from geoloc_core.imports.record import read_record
from geoloc_core.models.persistence import CONFIG_FILE, MODEL_FILE, load_model
from geoloc_core.paths import ProjectPaths
from geoloc_core.training.backbone_weights import read_record as read_backbone

MODEL_FOLDER = "model"  # where an import keeps its alignment model (imports/g3.py)


def adopt_model(paths: ProjectPaths, imported: str) -> dict[str, Any]:
    """Copy the import's model into paths.model_dir; returns the step's summary."""
    folder = paths.root / imported
    fix = "set train.imported_model to a folder `geoloc import g3` wrote (artifacts/imports/g3)"
    if not (folder / MODEL_FOLDER / MODEL_FILE).is_file():
        raise FileNotFoundError(f"train.imported_model={imported} holds no {MODEL_FOLDER}/: {fix}")
    record = read_record(folder)  # every imported byte checked
    features = json.loads((folder / MODEL_FOLDER / CONFIG_FILE).read_text())["features"]
    backbone = read_backbone(paths.root)
    if Path(features["pretrained"]) != Path(backbone.pretrained):
        raise ValueError(
            f"train.imported_model={imported} was imported with the backbone "
            f"{features['pretrained']}, but the features come from backbone.pretrained="
            f"{backbone.pretrained}: set backbone.pretrained to {features['pretrained']}"
        )
    _check_feature_cache(paths, imported, FeatureSpec(**features))
    paths.model_dir.mkdir(parents=True, exist_ok=True)
    for name in (MODEL_FILE, CONFIG_FILE):
        tmp = paths.model_dir / f"{name}.tmp"
        shutil.copyfile(folder / MODEL_FOLDER / name, tmp)
        tmp.replace(paths.model_dir / name)
    trained = load_model(paths.model_dir)  # the copy loads (its digest is checked there)
    return {
        "imported_from": imported,
        "import_kind": record["kind"],
        "variant": trained.model.config.variant,
        "model_sha256": file_sha256(paths.model_weights),
    }


# FeatureSpec field -> the setting that decides it in the graph
SPEC_SETTINGS = {
    "architecture": "backbone.architecture",
    "pretrained": "backbone.pretrained",
    "token_grid": "features.token_grid",
    "weights_sha256": "backbone.pretrained (its files)",
    "implementation": "backbone.implementation",
    "precision": "features.precision",
}


def _check_feature_cache(paths: ProjectPaths, imported: str, wanted: FeatureSpec) -> None:
    """The cached features must be the imported model's inputs; otherwise every later step
    would refuse them. Skipped when no features are cached yet (the steps check then)."""
    from geoloc_core.training.feature_cache import FeatureCache

    try:
        found = FeatureCache(paths.features_dir).spec()
    except (FileNotFoundError, KeyError, ValueError):
        return
    differ = [
        f"{SPEC_SETTINGS.get(name, name)}: features {value!r}, import {getattr(wanted, name)!r}"
        for name, value in vars(found).items()
        if getattr(wanted, name, value) != value
    ]
    if differ:
        raise ValueError(
            f"train.imported_model={imported} needs other backbone features than the cached "
            f"ones ({'; '.join(differ)}): set those to the import's values (import.json's "
            "model features) and re-materialize the features"
        )
