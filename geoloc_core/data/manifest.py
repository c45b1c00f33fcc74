"""One manifest schema for every dataset: what downstream steps may rely on.

Every source (demo world, MP16-Pro, IM2GPS3k, YFCC4k, a folder of geotagged photos) becomes
rows of MANIFEST_COLUMNS: `image` is a path relative to the project root or a tar member
(`<archive>.tar#<member>`, see locations.py). Sources that know where a photo was taken in
words add PLACE_FIELDS (MP16-Pro's columns; `continent` is a name such as "Europe").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from geoloc_core.data.containment import escape_reason
from geoloc_core.data.schema import (
    DEMO_BENCHMARKS,
    MANIFEST_COLUMNS,
    PLACE_FIELDS,
    REFERENCE_SPLITS,
    SOURCE_PROBLEM,
    TEXT_COLUMNS,
)
from geoloc_core.text.names import continent_name

__all__ = [
    "DEMO_BENCHMARKS",
    "MANIFEST_COLUMNS",
    "PLACE_FIELDS",
    "REFERENCE_SPLITS",
    "TEXT_COLUMNS",
    "ManifestError",
    "check_manifest",
    "demo_manifest",
    "project_relative",
    "read_manifest",
    "write_manifest",
]


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file and the fix."""


def demo_manifest(demo_root: Path, project_root: Path) -> pd.DataFrame:
    """The demo world's manifest in the common schema, image paths relative to the project; a
    row whose image or label path leads out of the demo folder keeps the reason in
    SOURCE_PROBLEM, for the gate to quarantine by name."""
    source_file = demo_root / "manifest.csv"
    if not source_file.is_file():
        raise ManifestError(
            f"{source_file} is missing: generate the demo world with `geoloc demo-world` "
            "(make demo does it) or point params data.root at your data"
        )
    raw = pd.read_csv(
        source_file, dtype={"id": str, "split": str, "country_code": str}, keep_default_na=False
    )
    missing = [c for c in ("id", "split", "lat", "lon", "image") if c not in raw.columns]
    if missing:
        raise ManifestError(f"{source_file} lacks columns {missing}; regenerate the demo world")
    extra = [c for c in ("site_id", "country_code", "continent") if c in raw.columns]
    manifest = pd.DataFrame(
        {
            "id": raw["id"],
            "image": [project_relative(demo_root / rel, project_root) for rel in raw["image"]],
            "lat": pd.to_numeric(raw["lat"], errors="coerce"),
            "lon": pd.to_numeric(raw["lon"], errors="coerce"),
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
    columns = [raw[c] for c in ("image", "label") if c in raw.columns]
    manifest[SOURCE_PROBLEM] = [
        "; ".join(r for r in (escape_reason(entry, demo_root) for entry in entries) if r)
        for entries in zip(*columns, strict=True)
    ]
    if "continent" in manifest.columns:
        # The demo world writes continent codes; the schema holds names, as MP16-Pro does.
        manifest["continent"] = [continent_name(str(c)) for c in manifest["continent"]]
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
    """A manifest as written: text columns stay text ("" not NaN), numbers are numbers."""
    if not path.is_file():
        raise ManifestError(f"{path} is missing: materialize the data assets first")
    header = pd.read_csv(path, nrows=0).columns
    text = [c for c in header if c in TEXT_COLUMNS]
    return pd.read_csv(
        path,
        dtype={c: str for c in text},
        keep_default_na=False,
        na_values={c: [""] for c in header if c not in text},
    )
