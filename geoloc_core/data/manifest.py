"""One manifest schema for every dataset: what downstream steps may rely on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

MANIFEST_COLUMNS = ("id", "image", "lat", "lon", "split", "source")
REFERENCE_SPLITS = ("reference", "validation")
DEMO_BENCHMARKS = ("demo-street", "demo-unseen")


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file and the fix."""


def demo_manifest(demo_root: Path, project_root: Path) -> pd.DataFrame:
    """The demo world's manifest in the common schema, image paths relative to the project."""
    source_file = demo_root / "manifest.csv"
    if not source_file.is_file():
        raise ManifestError(
            f"{source_file} is missing: generate the demo world with `geoloc demo-world` "
            "(make demo does it) or point params data.root at your data"
        )
    raw = pd.read_csv(source_file, dtype={"id": str, "split": str})
    missing = [c for c in ("id", "split", "lat", "lon", "image") if c not in raw.columns]
    if missing:
        raise ManifestError(f"{source_file} lacks columns {missing}; regenerate the demo world")
    extra = [c for c in ("site_id", "country_code", "continent") if c in raw.columns]
    manifest = pd.DataFrame(
        {
            "id": raw["id"],
            "image": [project_relative(demo_root / rel, project_root) for rel in raw["image"]],
            "lat": raw["lat"].astype(float),
            "lon": raw["lon"].astype(float),
            "split": raw["split"],
            "source": "demo",
        }
    )
    if "label" in raw.columns:
        # The demo world's ground-truth label maps: the `demo` segmentation provider reads them.
        labels = [project_relative(demo_root / rel, project_root) for rel in raw["label"]]
        manifest["label"] = labels
    for column in extra:
        manifest[column] = raw[column].values
    return manifest


def project_relative(path: Path, project_root: Path) -> str:
    """Paths inside the project are stored relative to it, so a moved checkout still works."""
    resolved = path.resolve()
    root = project_root.resolve()
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else str(resolved)


def check_manifest(manifest: pd.DataFrame) -> list[tuple[str, str]]:
    """(id, reason) for every row downstream steps must not see."""
    problems: list[tuple[str, str]] = []
    ids = manifest["id"].astype(str)
    for image_id in ids[ids.duplicated(keep=False)].unique():
        problems.append((image_id, "duplicate id"))
    lat = pd.to_numeric(manifest["lat"], errors="coerce").to_numpy()
    lon = pd.to_numeric(manifest["lon"], errors="coerce").to_numpy()
    for image_id, la, lo in zip(ids, lat, lon, strict=True):
        if np.isnan(la) or np.isnan(lo):
            problems.append((image_id, "missing latitude or longitude"))
        elif not (-90 <= la <= 90 and -180 <= lo <= 180):
            problems.append((image_id, f"coordinates out of range ({la}, {lo})"))
    return problems


def write_manifest(manifest: pd.DataFrame, path: Path) -> None:
    """Atomic CSV with fixed float format, so identical content gives identical bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    manifest.to_csv(tmp, index=False, float_format="%.6f", lineterminator="\n")
    tmp.replace(path)


def read_manifest(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ManifestError(f"{path} is missing: materialize the data assets first")
    return pd.read_csv(path, dtype={"id": str, "split": str, "image": str})
