"""The imported GeoCLIP as a served model: a bundle (the import, its CLIP when it is a
directory, params' `text` section for place names) loaded by the same MLflow pyfunc as the
project's predict path (serving/pyfunc_model.py picks GeoClipPredictor when the bundle holds
GEOCLIP_BUNDLE), logged and registered like it."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from geoloc_core.file_hash import file_sha256
from geoloc_core.imports.geoclip import MODEL_RECORD
from geoloc_core.imports.record import read_record

GEOCLIP_BUNDLE = "geoclip_bundle.json"
BUNDLE_FORMAT = "geoloc-geoclip-bundle/1"
IMPORT_FOLDER, CLIP_FOLDER, PARAMS_FILE = "geoclip", "clip", "params.yaml"
REGISTERED_GEOCLIP_MODEL = "geoloc-geoclip"


def build_geoclip_bundle(
    imported: Path, text_section: Mapping[str, Any], folder: Path
) -> dict[str, Any]:
    """Copy the import (and its CLIP directory) into an empty folder; returns its record."""
    read_record(Path(imported), "geoclip")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty: a bundle is built into an empty folder")
    shutil.copytree(imported, folder / IMPORT_FOLDER)
    clip = json.loads((Path(imported) / MODEL_RECORD).read_text())["clip"]
    clip_source = clip.get("hub_id")
    if "directory" in clip:
        shutil.copytree(clip["directory"], folder / CLIP_FOLDER)
        clip_source = CLIP_FOLDER
    (folder / PARAMS_FILE).write_text(yaml.safe_dump({"text": dict(text_section)}))
    record = {
        "format": BUNDLE_FORMAT,
        "clip": clip_source,
        "files": {
            p.relative_to(folder).as_posix(): file_sha256(p)
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        },
    }
    (folder / GEOCLIP_BUNDLE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def log_geoclip_served_model(
    root: Path, imported: Path, text_section: Mapping[str, Any], client: MlflowClient, run_id: str
) -> str:
    """Save the pyfunc with the GeoCLIP bundle into run_id and register it; returns its URI."""
    import mlflow.pyfunc

    import geoloc_core
    from geoloc_core.serving.pyfunc_model import BUNDLE_ARTIFACT, ServedPredictor, signature
    from geoloc_core.serving.registry import (
        ARTIFACT_PATH,
        example_photo,
        input_example,
        requirements,
    )

    with tempfile.TemporaryDirectory(prefix="geoloc-geoclip-") as scratch:
        bundle = Path(scratch) / "bundle"
        build_geoclip_bundle(imported, text_section, bundle)
        model_dir = Path(scratch) / "model"
        mlflow.pyfunc.save_model(
            path=str(model_dir),
            python_model=ServedPredictor(),
            artifacts={BUNDLE_ARTIFACT: str(bundle)},
            signature=signature(),
            input_example=input_example(example_photo(root)),
            pip_requirements=requirements(),
            code_paths=[str(Path(geoloc_core.__file__).parent)],
        )
        client.log_artifacts(run_id, str(model_dir), ARTIFACT_PATH)
    try:
        client.get_registered_model(REGISTERED_GEOCLIP_MODEL)
    except MlflowException:
        client.create_registered_model(
            REGISTERED_GEOCLIP_MODEL, description="GeoCLIP (imported): photos -> gallery points"
        )
    version = client.create_model_version(
        REGISTERED_GEOCLIP_MODEL, source=f"runs:/{run_id}/{ARTIFACT_PATH}", run_id=run_id
    )
    return f"models:/{REGISTERED_GEOCLIP_MODEL}/{version.version}"
