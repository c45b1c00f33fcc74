"""Photo paths from a data set's own files stay inside its folder: an IMG_ID, a demo manifest
entry or a photo-folder symlink that leads out ('..', an absolute path, a link) is quarantined
by the real gate with the row named, and the file outside is never opened."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from geoloc_core.data.containment import escape_reason
from geoloc_core.data.manifest import read_manifest
from geoloc_core.data.schema import SOURCE_PROBLEM
from geoloc_core.data.sources import reference_rows
from geoloc_core.paths import ProjectPaths
from geoloc_core.steps.manifests import build_benchmark_manifest
from tests.test_data_params import layer_params
from tests.test_data_sources import geotagged_jpeg
from tests.test_validation_gate import tiny_jpeg


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A readable JPEG outside every data folder: what an escaping entry would reach."""
    secret = tmp_path / "elsewhere" / "secret.jpg"
    secret.parent.mkdir()
    secret.write_bytes(tiny_jpeg())
    return secret


def test_escape_reason_names_each_way_out(tmp_path, outside):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "ok.jpg").write_bytes(tiny_jpeg())
    (folder / "link.jpg").symlink_to(outside)
    (folder / "inner.jpg").symlink_to(folder / "ok.jpg")
    assert escape_reason("ok.jpg", folder) == ""
    assert escape_reason("inner.jpg", folder) == ""  # a link that stays inside is fine
    assert "'..'" in escape_reason("../elsewhere/secret.jpg", folder)
    assert "'..'" in escape_reason("sub/../../elsewhere/secret.jpg", folder)
    assert "absolute" in escape_reason(str(outside), folder)
    assert str(outside) in escape_reason("link.jpg", folder)


def test_benchmark_rows_leaving_the_image_folder_are_quarantined_by_name(tmp_path, outside):
    raw = tmp_path / "data" / "raw" / "im2gps3k"
    images = raw / "images"
    images.mkdir(parents=True)
    good = [f"good_{i}.jpg" for i in range(40)]
    for name in good:
        (images / name).write_bytes(tiny_jpeg())
    (images / "link.jpg").symlink_to(outside)
    bad = {"../../elsewhere/secret.jpg": "'..'", str(outside): "absolute", "link.jpg": "link"}
    rows = [*good, *bad]
    pd.DataFrame(
        {"IMG_ID": rows, "AUTHOR": "a", "LAT": 48.85, "LON": 2.35, "S16": 0, "S365": 0}
    ).to_csv(raw / "im2gps3k_places365.csv", index=False)
    params = layer_params()
    manifest_cfg = params["manifest"] | {"expected_rows_im2gps3k": None}
    manifest_cfg["max_quarantine_fraction"] = 0.5
    paths = ProjectPaths(tmp_path)
    build_benchmark_manifest(paths, params["data"], "im2gps3k", manifest_cfg)
    quarantine = read_manifest(paths.quarantine_report("im2gps3k"))
    reasons = dict(zip(quarantine["id"], quarantine["reason"], strict=True))
    assert set(reasons) == set(bad)
    for image_id, words in bad.items():
        assert words in reasons[image_id], reasons[image_id]
    accepted = read_manifest(paths.benchmark_manifest("im2gps3k"))
    assert sorted(accepted["id"]) == sorted(good)


def test_a_photo_folder_link_out_is_refused_and_never_read(tmp_path):
    photos = tmp_path / "data" / "photos"
    geotagged_jpeg(photos / "paris.jpg", 48.8584, 2.2945)
    # the linked file outside carries GPS: were it read, the row would look valid
    outside = geotagged_jpeg(tmp_path / "private" / "home.jpg", 51.5, -0.12)
    (photos / "home.jpg").symlink_to(outside)
    cfg = layer_params()["data"] | {"source": "folder", "folder_images": "data/photos"}
    frame = reference_rows(tmp_path, cfg).frame.set_index("id")
    assert frame.loc["paris.jpg", SOURCE_PROBLEM] == ""
    assert str(outside) in frame.loc["home.jpg", SOURCE_PROBLEM]
    assert pd.isna(frame.loc["home.jpg", "lat"])


def test_demo_manifest_entries_leaving_the_world_are_refused(tiny_project, outside):
    cfg = layer_params()["data"]
    world = tiny_project / cfg["root"]
    manifest = pd.read_csv(world / "manifest.csv", dtype=str, keep_default_na=False)
    first, second = manifest["id"].iloc[0], manifest["id"].iloc[1]
    manifest.loc[0, "image"] = "../../../../elsewhere/secret.jpg"
    manifest.loc[1, "label"] = str(outside)
    manifest.to_csv(world / "manifest.csv", index=False)
    frame = reference_rows(tiny_project, cfg).frame.set_index("id")
    assert "'..'" in frame.loc[first, SOURCE_PROBLEM]
    assert "absolute" in frame.loc[second, SOURCE_PROBLEM]
    others = frame.drop(index=[first, second])
    assert (others[SOURCE_PROBLEM] == "").all()
    shutil.rmtree(world)
