"""The served model's bundle: exactly the files the predict path reads, laid out as in a project,
with the params sections it reads, so a model carries everything it needs and nothing else.

    artifacts/model/model.pt, config.json          the trained alignment model
    artifacts/backbone/<weights>.pt                the frozen towers (an open_clip tag's
                                                   weights are exported to a file here)
    artifacts/index/reference.faiss (+ .sha256), reference_meta.csv, index.json
    artifacts/texts/place_texts.csv                the reference images' place names
    gallery/<file>.csv                             verification.gallery, when configured
    artifacts/confidence/calibration.json          the confidence radii's calibration
    params.yaml                                    the predict sections (PREDICT_SECTIONS)
    bundle.json                                    format, every file's SHA-256, where the
                                                   towers and the gallery are

API keys are never settings (lmm.api_key_env names the variable), so the bundle holds none:
the serving process reads the key from its own environment.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from geoloc_core.file_hash import file_sha256
from geoloc_core.params import PARAMS_FILE
from geoloc_core.predict.files import BUNDLE_FORMAT, BUNDLE_RECORD, PredictFiles
from geoloc_core.predict.settings import PREDICT_SECTIONS, PredictSettings

GALLERY_FOLDER = "gallery"
EXTERNAL_FOLDER = "external"
EXPORTED_TOWERS = "artifacts/backbone/{architecture}-{tag}.pt"


@dataclass(frozen=True)
class Bundle:
    folder: Path
    files: dict[str, str]  # relative path -> SHA-256, bundle.json and params.yaml included

    @property
    def total_bytes(self) -> int:
        return sum((self.folder / name).stat().st_size for name in self.files)


def build_bundle(
    project_root: Path, sections: Mapping[str, Mapping[str, Any]], folder: Path
) -> Bundle:
    """Copy what the predict path reads, with these params sections, into an empty folder."""
    project_root = Path(project_root).resolve()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty: a bundle is built into an empty folder")
    params = {name: json.loads(json.dumps(sections[name])) for name in PREDICT_SECTIONS}
    files = PredictFiles.of_project(project_root, PredictSettings.from_params(params))
    gallery = None
    gallery_files: set[Path] = set()
    if files.gallery is not None:
        gallery = f"{GALLERY_FOLDER}/{files.gallery.name}"
        params["verification"]["gallery"] = gallery
        gallery_files = {files.gallery, files.gallery.with_name(files.gallery.name + ".sha256")}
    placed: dict[Path, str] = {}
    for source in files.required():
        if source in gallery_files:
            placed[source] = f"{GALLERY_FOLDER}/{source.name}"
        else:
            placed[source] = _relative(source, project_root)
        _place(source, folder / placed[source])
    if files.towers_weights is not None:
        towers = placed[files.towers_weights]
    else:
        towers = _export_tag_towers(files, folder)
    (folder / PARAMS_FILE).write_text(yaml.safe_dump(params, sort_keys=False))
    digests = {
        path.relative_to(folder).as_posix(): file_sha256(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    record = {
        "format": BUNDLE_FORMAT,
        "towers_weights": towers,
        "gallery": gallery,
        "confidence": placed[files.confidence] if files.confidence is not None else None,
        "files": digests,
        # the far-photo warning's threshold from the project's validation decisions
        "far_warning": asdict(files.far) if files.far is not None else None,
    }
    (folder / BUNDLE_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    digests[BUNDLE_RECORD] = file_sha256(folder / BUNDLE_RECORD)
    return Bundle(folder, dict(sorted(digests.items())))


def _place(source: Path, target: Path) -> None:
    """A hard link when the filesystem allows (weights are large), else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _relative(source: Path, project_root: Path) -> str:
    """Where a file goes in the bundle: its place in the project, or external/<name> for a
    file kept outside it (e.g. weights named by an absolute path)."""
    try:
        return source.resolve().relative_to(project_root).as_posix()
    except ValueError:
        return f"{EXTERNAL_FOLDER}/{source.name}"


def _export_tag_towers(files: PredictFiles, folder: Path) -> str:
    """An open_clip tag's weights written to a file of the bundle (the tag would otherwise need
    the network, or the cache of the machine that trained)."""
    import torch

    from geoloc_core.encoders.clip_towers import TowerSpec, build_clip
    from geoloc_core.models.persistence import load_model

    spec = load_model(files.model_dir).features
    relative = EXPORTED_TOWERS.format(architecture=spec.architecture, tag=spec.pretrained)
    target = folder / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    towers = build_clip(TowerSpec(spec.architecture, str(spec.pretrained)))
    torch.save(towers.model.state_dict(), target)
    return relative
