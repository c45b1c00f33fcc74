"""Any folder of geotagged photos: the position comes from each file's EXIF GPS block."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from geoloc_core.data.containment import escape_reason
from geoloc_core.data.exif_gps import GpsReading, gps_from_exif
from geoloc_core.data.manifest import ManifestError, project_relative
from geoloc_core.data.schema import SOURCE_PROBLEM
from geoloc_core.data.splits import assign_splits

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff")


def read_gps(path: Path) -> GpsReading:
    """Only the header is parsed: cheap even for large photos."""
    try:
        with Image.open(path) as image:
            return gps_from_exif(image)
    except Exception as exc:  # not an image at all: the image check reports it in detail
        return GpsReading(None, None, f"cannot read EXIF ({type(exc).__name__})")


def folder_manifest(folder: Path, project_root: Path, validation_fraction: float) -> pd.DataFrame:
    """One row per photo under folder (recursively); id = its path relative to the folder.

    A photo without a usable GPS position keeps its row with the reason, so the manifest gate
    quarantines it by name instead of dropping it unseen.
    """
    if not folder.is_dir():
        raise ManifestError(f"{folder} is not a folder; check params data.folder_images")
    photos = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES
    )
    if not photos:
        raise ManifestError(f"{folder} holds no photos with suffixes {PHOTO_SUFFIXES}")
    ids = [p.relative_to(folder).as_posix() for p in photos]
    escapes = [escape_reason(i, folder) for i in ids]  # a link out is refused, never opened
    readings = [
        GpsReading(None, None, why) if why else read_gps(p)
        for p, why in zip(photos, escapes, strict=True)
    ]
    return pd.DataFrame(
        {
            "id": ids,
            "image": [project_relative(p, project_root) for p in photos],
            "lat": [np.nan if r.lat is None else r.lat for r in readings],
            "lon": [np.nan if r.lon is None else r.lon for r in readings],
            "split": assign_splits(ids, validation_fraction),
            "source": "folder",
            SOURCE_PROBLEM: [r.problem for r in readings],
        }
    )
