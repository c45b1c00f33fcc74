"""`geoloc import geoclip`: the geoclip wheel's released files as a zero-training geolocator.

GeoCLIP predicts the gallery points with the highest logit_scale * cos(image, gallery point):
the image is CLIP ViT-L/14's projected embedding through GeoCLIP's MLP (768->768->512), each
gallery point its location encoder's output (Equal Earth input). Written under
artifacts/imports/geoclip/: the wheel's three weight files, the gallery (the wheel's 100K
points unless --gallery names another LAT,LON CSV), the gallery's unit location embeddings
(computed once here, not per photo), geoclip.json (which CLIP: a hub id or a transformers
directory with the SHA-256 of its weights) and import.json (imports/record.py).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from geoloc_core.encoders.geoclip import load_geoclip_weights
from geoloc_core.encoders.geoclip_files import GPS_GALLERY_FILE, LOCATION_ENCODER_FILE, geoclip_file
from geoloc_core.encoders.gps import GPSEncoder
from geoloc_core.file_hash import file_sha256
from geoloc_core.imports.clip_config import VIT_L14_NAME
from geoloc_core.imports.record import write_record
from geoloc_core.models.heads import projection_head
from geoloc_core.paths import ProjectPaths

KIND = "geoclip"
IMAGE_MLP_FILE = "model/weights/image_encoder_mlp_weights.pth"
LOGIT_SCALE_FILE = "model/weights/logit_scale_weights.pth"
MLP, LOCATION, SCALE = "image_mlp.pth", "location_encoder.pth", "logit_scale.pth"
GALLERY, GALLERY_EMBEDDINGS, MODEL_RECORD = "gallery.csv", "gallery_embeddings.npy", "geoclip.json"
CLIP_DIM, GPS_DIM = 768, 512  # GeoCLIP's MLP: CLIP's 768-d projection -> 512-d GPS space
SIGMAS = (1.0, 16.0, 256.0)
GALLERY_BATCH = 8192
Log = Callable[[str], None]


def location_encoder(weights: Path) -> GPSEncoder:
    """GeoCLIP's location encoder (computes what geoclip.model.LocationEncoder computes)."""
    encoder = GPSEncoder(
        GPS_DIM, SIGMAS, n_features=512, hidden=1024, layers=3, projection="equal_earth"
    )
    load_geoclip_weights(encoder, weights)
    return encoder.eval()


def image_mlp(weights: Path) -> torch.nn.Sequential:
    mlp = projection_head(CLIP_DIM, CLIP_DIM, GPS_DIM)
    mlp.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    return mlp.eval()


def read_gallery_csv(path: Path) -> np.ndarray:
    """(n, 2) float32 LAT, LON as GeoCLIP reads its gallery; refused when not coordinates."""
    table = pd.read_csv(path)
    if not {"LAT", "LON"} <= set(table.columns):
        raise ValueError(f"gallery {path} has no LAT and LON columns")
    latlon = table[["LAT", "LON"]].to_numpy(np.float32)
    if not len(latlon) or not (np.abs(latlon[:, 0]) <= 90).all() or not (
        np.abs(latlon[:, 1]) <= 180
    ).all():
        raise ValueError(f"gallery {path} is empty or holds coordinates off the globe")
    return latlon


@torch.no_grad()
def gallery_embeddings(encoder: GPSEncoder, latlon: np.ndarray, log: Log) -> np.ndarray:
    """Unit location embeddings of the gallery, in batches."""
    chunks = []
    for start in range(0, len(latlon), GALLERY_BATCH):
        batch = torch.from_numpy(latlon[start : start + GALLERY_BATCH])
        chunks.append(torch.nn.functional.normalize(encoder(batch), dim=1).numpy())
        log(f"import geoclip: gallery {min(start + GALLERY_BATCH, len(latlon))}/{len(latlon)}")
    return np.concatenate(chunks).astype(np.float32)


def clip_reference(clip: str) -> dict[str, Any]:
    """geoclip.json's `clip`: a hub id as given, or a directory with its weights' SHA-256."""
    folder = Path(clip)
    if not folder.is_dir():
        return {"hub_id": clip}
    weights = folder / "model.safetensors"
    if not weights.is_file() or not (folder / "preprocessor_config.json").is_file():
        raise FileNotFoundError(
            f"--clip {folder} is not a transformers CLIP directory (model.safetensors and "
            "preprocessor_config.json)"
        )
    return {"directory": str(folder.resolve()), "weights_sha256": file_sha256(weights)}


@dataclass(frozen=True)
class ImportedGeoClip:
    folder: Path
    record: dict[str, Any]


def import_geoclip(
    root: Path, clip: str = VIT_L14_NAME, gallery: Path | None = None, log: Log = print
) -> ImportedGeoClip:
    """Write artifacts/imports/geoclip from the installed wheel (see the module docstring)."""
    folder = ProjectPaths(Path(root)).imported(KIND)
    try:
        sources = {
            "image_mlp": geoclip_file(IMAGE_MLP_FILE),
            "location_encoder": geoclip_file(LOCATION_ENCODER_FILE),
            "logit_scale": geoclip_file(LOGIT_SCALE_FILE),
            "gallery": Path(gallery) if gallery is not None else geoclip_file(GPS_GALLERY_FILE),
        }
    except ModuleNotFoundError as exc:  # the wheel is missing: one line saying how to install
        raise FileNotFoundError(str(exc)) from None
    if not sources["gallery"].is_file():
        raise FileNotFoundError(f"--gallery {sources['gallery']} does not exist")
    reference = clip_reference(clip)
    latlon = read_gallery_csv(sources["gallery"])
    image_mlp(sources["image_mlp"])  # refused here, not at the first photo, if it does not fit
    scale = torch.load(sources["logit_scale"], map_location="cpu", weights_only=True)
    if not isinstance(scale, torch.Tensor) or scale.numel() != 1:
        raise ValueError(f"{sources['logit_scale']} is not GeoCLIP's logit scale (one number)")
    scratch = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    for name, source in ((MLP, "image_mlp"), (LOCATION, "location_encoder"), (SCALE, "logit_scale"),
                         (GALLERY, "gallery")):
        shutil.copyfile(sources[source], scratch / name)
    embeddings = gallery_embeddings(location_encoder(scratch / LOCATION), latlon, log)
    np.save(scratch / GALLERY_EMBEDDINGS, embeddings)
    details = {"clip": reference, "gallery_points": len(latlon), "logit_scale": float(scale)}
    (scratch / MODEL_RECORD).write_text(json.dumps(details, indent=2, sort_keys=True) + "\n")
    record = write_record(scratch, KIND, {**sources, "clip": clip}, details)
    shutil.rmtree(folder, ignore_errors=True)
    scratch.replace(folder)
    log(f"import geoclip: written to {folder} ({len(latlon)} gallery points)")
    return ImportedGeoClip(folder, record)
