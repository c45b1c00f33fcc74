"""Benchmarks shipped as a *_places365.csv plus a folder of JPEGs named by IMG_ID: IM2GPS3k and
YFCC4k. Another such benchmark is one entry in CSV_BENCHMARKS, with its params keys
data.<name>_csv and data.<name>_images (and, if its size is known, manifest.expected_rows_<name>).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from geoloc_core.data.containment import escape_reason
from geoloc_core.data.manifest import project_relative
from geoloc_core.data.schema import SOURCE_PROBLEM
from geoloc_core.data.sources.places365_csv import (
    check_lat_lon_headers,
    read_places365_csv,
    refuse_wrong_yfcc,
)

# name -> a check of the CSV's rows beyond the shared ones (None: no more than those)
CSV_BENCHMARKS: dict[str, Callable[[pd.DataFrame, Path], None] | None] = {
    "im2gps3k": None,
    "yfcc4k": refuse_wrong_yfcc,  # old links served the 25,600-row YFCC file instead
}


def benchmark_csv_manifest(
    name: str, csv_path: Path, images_dir: Path, project_root: Path
) -> pd.DataFrame:
    """Every row of a benchmark CSV in the common schema (split and source = the benchmark).

    A row whose photo is missing, or whose IMG_ID leads out of images_dir, keeps its place
    here with the reason; the manifest gate quarantines it.
    """
    if name not in CSV_BENCHMARKS:
        raise ValueError(f"'{name}' is not one of {list(CSV_BENCHMARKS)}")
    frame = read_places365_csv(csv_path)
    own_check = CSV_BENCHMARKS[name]
    if own_check is not None:
        own_check(frame, csv_path)
    check_lat_lon_headers(frame, csv_path, dataset=name)
    folder = project_relative(images_dir, project_root)
    images = [
        f"{folder}/{image_id}" if isinstance(image_id, str) else "" for image_id in frame["IMG_ID"]
    ]
    return pd.DataFrame(
        {
            "id": frame["IMG_ID"],
            "image": images,
            "lat": frame["LAT"],
            "lon": frame["LON"],
            "split": name,
            "source": name,
            SOURCE_PROBLEM: [
                escape_reason(image_id, images_dir) if isinstance(image_id, str) else ""
                for image_id in frame["IMG_ID"]
            ],
        }
    )
