"""MP16-Pro: MP16_Pro_places365.csv (IMG_ID, AUTHOR, LAT, LON and the place fields) with the
photos inside one or more mp-16-images*.tar archives.

IMG_ID keeps its path separators ("3f/a0/3795621775.jpg"); an archive member matches when its
name ends with the IMG_ID's components, whatever top folder the archive adds
("mp-16-images/3f/a0/3795621775.jpg"). Each archive is indexed once (tar_index.py).
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from geoloc_core.data.locations import tar_location
from geoloc_core.data.manifest import ManifestError, project_relative
from geoloc_core.data.schema import PLACE_FIELDS, SOURCE_PROBLEM
from geoloc_core.data.sources.places365_csv import check_lat_lon_headers, read_places365_csv
from geoloc_core.data.splits import assign_splits
from geoloc_core.data.tar_index import load_tar_index


def find_archives(patterns: Sequence[str], project_root: Path) -> list[Path]:
    """Archives matching the glob patterns (relative to the project root), sorted."""
    found: set[Path] = set()
    for pattern in patterns:
        full = pattern if Path(pattern).is_absolute() else str(project_root / pattern)
        found.update(Path(p) for p in glob.glob(full))
    if not found:
        raise ManifestError(
            f"no archive matches params data.mp16pro_archives {list(patterns)} under "
            f"{project_root}; download the MP16-Pro tar files or fix the patterns"
        )
    return sorted(found)


def _suffix(name: str, depth: int) -> str:
    return "/".join(name.split("/")[-depth:])


def _candidates(archives: Sequence[Path], depths: Sequence[int], project_root: Path):
    """Every archive member, keyed by its last `depth` path components for each depth."""
    parts = [pd.DataFrame(columns=["key", "depth", "archive", "member"])]
    for archive in archives:
        names = load_tar_index(archive).member_names()
        archive_text = project_relative(archive, project_root)
        for depth in depths:
            keys = [_suffix(n, depth) for n in names]
            frame = {"key": keys, "depth": depth, "archive": archive_text, "member": names}
            parts.append(pd.DataFrame(frame))
    return pd.concat(parts, ignore_index=True)


def locate_members(
    ids: pd.Series, archives: Sequence[Path], project_root: Path
) -> tuple[list[str], list[str]]:
    """(image location, problem) for each IMG_ID; a missing or ambiguous member is a problem.

    A missing id gets no problem here: the manifest gate reports the missing id itself.
    """
    text_ids = ids.fillna("").astype(str)
    depth = text_ids.str.count("/") + 1
    candidates = _candidates(archives, sorted(set(depth[text_ids != ""])), project_root)
    query = pd.DataFrame({"pos": range(len(ids)), "key": text_ids, "depth": depth})
    matches = query.merge(candidates, on=["key", "depth"], how="inner")
    per_row = matches.groupby("pos")["archive"].agg(list)
    first = matches.drop_duplicates("pos").set_index("pos")
    archive_names = ", ".join(a.name for a in archives)
    locations = [""] * len(ids)
    problems = [""] * len(ids)
    for pos, archive, member in zip(first.index, first["archive"], first["member"], strict=True):
        locations[pos] = tar_location(archive, member)
    for pos, holders in per_row[per_row.map(len) > 1].items():
        problems[pos] = f"found {len(holders)} times, in {holders}"
    for pos in range(len(ids)):
        if text_ids.iat[pos] and not locations[pos]:
            problems[pos] = f"no member ending in '{text_ids.iat[pos]}' in {archive_names}"
    return locations, problems


def mp16pro_manifest(
    csv_path: Path,
    archive_patterns: Sequence[str],
    project_root: Path,
    validation_fraction: float,
) -> pd.DataFrame:
    """Every MP16-Pro row in the common schema, keeping the place fields the CSV ships."""
    frame = read_places365_csv(csv_path, text_columns=PLACE_FIELDS)
    check_lat_lon_headers(frame, csv_path, dataset="mp16pro")
    archives = find_archives(archive_patterns, project_root)
    locations, problems = locate_members(frame["IMG_ID"], archives, project_root)
    manifest = pd.DataFrame(
        {
            "id": frame["IMG_ID"],
            "image": locations,
            "lat": frame["LAT"],
            "lon": frame["LON"],
            "split": assign_splits(frame["IMG_ID"].fillna(""), validation_fraction),
            "source": "mp16pro",
        }
    )
    for field in PLACE_FIELDS:
        manifest[field] = frame[field] if field in frame.columns else ""
    # Nominatim (MP16-Pro's geocoder) writes "fr"; the schema holds ISO 3166 alpha-2 ("FR").
    manifest["country_code"] = manifest["country_code"].str.upper()
    manifest[SOURCE_PROBLEM] = problems
    return manifest
