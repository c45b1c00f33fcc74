"""Adapters: the real IM2GPS3k CSV, refusals (swapped LAT/LON headers, the yfcc25600 list)
and a folder of photos geotagged in EXIF."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import ExifTags, Image, TiffImagePlugin

from geoloc_core.data.manifest import ManifestError
from geoloc_core.data.schema import MANIFEST_COLUMNS, SOURCE_PROBLEM
from geoloc_core.data.sources import benchmark_rows, reference_rows
from geoloc_core.data.sources.benchmarks import benchmark_csv_manifest
from geoloc_core.data.sources.places365_csv import KNOWN_DATASETS, read_places365_csv
from geoloc_core.data.splits import assign_splits
from tests.test_data_params import layer_params

IM2GPS3K = Path("/work/shared/reference/im2gps3k_places365.csv")
needs_im2gps3k = pytest.mark.skipif(not IM2GPS3K.is_file(), reason="IM2GPS3k CSV not present")


def swapped_copy(source: Path, target: Path) -> Path:
    """The header of old copies: LAT and LON names exchanged, data untouched."""
    lines = source.read_text().splitlines(keepends=True)
    lines[0] = lines[0].replace("LAT", "@@").replace("LON", "LAT").replace("@@", "LON")
    target.write_text("".join(lines))
    return target


@needs_im2gps3k
def test_real_im2gps3k_csv_loads_to_2997_rows(tmp_path):
    frame = benchmark_csv_manifest("im2gps3k", IM2GPS3K, tmp_path / "images", tmp_path)
    assert len(frame) == 2997
    assert set(MANIFEST_COLUMNS) <= set(frame.columns)
    assert frame["id"].is_unique and frame["lat"].between(-90, 90).all()
    assert (frame["split"] == "im2gps3k").all()
    assert frame["image"].iloc[0] == "images/1000269685_e60e9cdfb4_1125_78841376@N00.jpg"


@needs_im2gps3k
def test_anchor_rows_are_the_published_coordinates():
    frame = read_places365_csv(IM2GPS3K).set_index("IMG_ID")
    for image_id, lat, lon in KNOWN_DATASETS["im2gps3k"].anchors:
        assert frame.loc[image_id, "LAT"] == pytest.approx(lat, abs=1e-6)
        assert frame.loc[image_id, "LON"] == pytest.approx(lon, abs=1e-6)


@needs_im2gps3k
def test_swapped_headers_are_refused_naming_the_file(tmp_path):
    bad = swapped_copy(IM2GPS3K, tmp_path / "im2gps3k_places365.csv")
    with pytest.raises(ManifestError, match=r"im2gps3k_places365\.csv.*headers look swapped"):
        benchmark_csv_manifest("im2gps3k", bad, tmp_path, tmp_path)


@needs_im2gps3k
def test_swap_within_90_degrees_is_caught_by_anchor_rows(tmp_path):
    frame = pd.read_csv(IM2GPS3K)
    europe_and_americas = frame[frame["LON"].abs() <= 90]
    subset = tmp_path / "subset.csv"
    europe_and_americas.to_csv(subset, index=False)
    bad = swapped_copy(subset, tmp_path / "subset_swapped.csv")
    with pytest.raises(ManifestError, match="headers are swapped"):
        benchmark_csv_manifest("im2gps3k", bad, tmp_path, tmp_path)


@needs_im2gps3k
def test_a_few_out_of_range_rows_are_not_mistaken_for_a_swap(tmp_path):
    frame = pd.read_csv(IM2GPS3K)
    frame.loc[:9, "LAT"] = 123.0  # ten corrupt rows: the gate quarantines them one by one
    corrupt = tmp_path / "im2gps3k_places365.csv"
    frame.to_csv(corrupt, index=False)
    rows = benchmark_csv_manifest("im2gps3k", corrupt, tmp_path, tmp_path)
    assert (rows["lat"] == 123.0).sum() == 10


def test_yfcc25600_is_named_as_a_different_set(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "IMG_ID": [f"{i}.jpg" for i in range(25600)],
            "AUTHOR": "x",
            "LAT": rng.uniform(-60, 70, 25600),
            "LON": rng.uniform(-180, 180, 25600),
        }
    )
    path = tmp_path / "yfcc4k_places365.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ManifestError, match=r"'yfcc25600' set \(YFCC26k\), a different"):
        benchmark_csv_manifest("yfcc4k", path, tmp_path, tmp_path)


def geotagged_jpeg(path: Path, lat: float | None, lon: float | None) -> Path:
    exif = Image.Exif()
    if lat is not None and lon is not None:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)

        def dms(value: float) -> tuple:
            degrees = int(value)
            minutes = int((value - degrees) * 60)
            seconds = round((value - degrees - minutes / 60) * 3600, 4)
            return tuple(TiffImagePlugin.IFDRational(v) for v in (degrees, minutes, seconds))

        gps[ExifTags.GPS.GPSLatitudeRef] = "N" if lat >= 0 else "S"
        gps[ExifTags.GPS.GPSLatitude] = dms(abs(lat))
        gps[ExifTags.GPS.GPSLongitudeRef] = "E" if lon >= 0 else "W"
        gps[ExifTags.GPS.GPSLongitude] = dms(abs(lon))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 24), (90, 120, 200)).save(path, "JPEG", exif=exif)
    return path


def test_folder_of_geotagged_photos(tmp_path):
    photos = tmp_path / "data" / "photos"
    geotagged_jpeg(photos / "paris.jpg", 48.8584, 2.2945)
    geotagged_jpeg(photos / "trip" / "sydney.jpg", -33.8568, 151.2153)
    geotagged_jpeg(photos / "trip" / "nyc.JPG", 40.6892, -74.0445)
    geotagged_jpeg(photos / "no_gps.jpg", None, None)
    (photos / "readme.txt").write_text("not a photo")
    cfg = layer_params()["data"] | {"source": "folder", "folder_images": "data/photos"}
    rows = reference_rows(tmp_path, cfg)
    frame = rows.frame.set_index("id")
    assert rows.dataset == "folder"
    assert sorted(frame.index) == ["no_gps.jpg", "paris.jpg", "trip/nyc.JPG", "trip/sydney.jpg"]
    assert frame.loc["paris.jpg", "lat"] == pytest.approx(48.8584, abs=1e-4)
    assert frame.loc["trip/sydney.jpg", "lat"] == pytest.approx(-33.8568, abs=1e-4)
    assert frame.loc["trip/sydney.jpg", "lon"] == pytest.approx(151.2153, abs=1e-4)
    assert frame.loc["trip/nyc.JPG", "lon"] == pytest.approx(-74.0445, abs=1e-4)
    assert frame.loc["paris.jpg", "image"] == "data/photos/paris.jpg"
    assert np.isnan(frame.loc["no_gps.jpg", "lat"])
    assert frame.loc["no_gps.jpg", SOURCE_PROBLEM] == "no GPS position in EXIF"


def test_validation_split_depends_on_the_id_only():
    ids = [f"img-{i}" for i in range(4000)]
    splits = assign_splits(ids, 0.1)
    assert 300 < (splits == "validation").sum() < 500
    assert list(assign_splits(ids[::-1], 0.1)) == list(splits[::-1])


def test_demo_benchmark_rows_and_unknown_source(tiny_project):
    cfg = layer_params()["data"]
    street = benchmark_rows(tiny_project, cfg, "demo-street").frame
    assert len(street) and (street["split"] == "demo-street").all()
    assert set(street["continent"]) <= {
        "Africa", "Asia", "Europe", "North America", "Oceania", "South America"
    }
    with pytest.raises(ManifestError, match="not one of"):
        reference_rows(tiny_project, cfg | {"source": "flickr"})
    shutil.rmtree(tiny_project / cfg["root"])
    with pytest.raises(ManifestError, match="generate the demo world"):
        reference_rows(tiny_project, cfg)
