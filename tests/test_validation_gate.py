"""The manifest gate (Great Expectations 1.x) on the real IM2GPS3k CSV: the clean set passes;
a corrupted copy quarantines each bad id with its reason while the good rows proceed; over
the failure-rate limit, or with the wrong row count, the gate fails."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from geoloc_core.data.manifest import read_manifest
from geoloc_core.paths import ProjectPaths
from geoloc_core.steps.manifests import (
    build_benchmark_manifest,
)
from geoloc_core.validation.gate import read_report
from tests.test_data_params import layer_params

IM2GPS3K = Path("/work/shared/reference/im2gps3k_places365.csv")
pytestmark = pytest.mark.skipif(not IM2GPS3K.is_file(), reason="IM2GPS3k CSV not present")


def tiny_jpeg(side: int = 20) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (120, 130, 140)).save(buffer, "JPEG", quality=70)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def im2gps3k_images(tmp_path_factory) -> Path:
    """A small JPEG for every IM2GPS3k id (the real photos are not shipped here)."""
    folder = tmp_path_factory.mktemp("im2gps3k") / "images"
    folder.mkdir()
    data = tiny_jpeg()
    for image_id in pd.read_csv(IM2GPS3K, usecols=["IMG_ID"])["IMG_ID"]:
        (folder / image_id).write_bytes(data)
    return folder


def make_project(root: Path, images: Path, frame: pd.DataFrame | None = None) -> ProjectPaths:
    raw = root / "data" / "raw" / "im2gps3k"
    raw.mkdir(parents=True)
    shutil.copytree(images, raw / "images")
    if frame is None:
        shutil.copy(IM2GPS3K, raw / "im2gps3k_places365.csv")
    else:
        frame.to_csv(raw / "im2gps3k_places365.csv", index=False)
    return ProjectPaths(root)


def build(paths: ProjectPaths, **manifest_overrides):
    params = layer_params()
    params["manifest"].update(manifest_overrides)
    summary = build_benchmark_manifest(paths, params["data"], "im2gps3k", params["manifest"])
    report = read_report(paths.validation_report("im2gps3k"))
    quarantine = read_manifest(paths.quarantine_report("im2gps3k"))
    return summary, report, dict(zip(quarantine["id"], quarantine["reason"], strict=True))


def test_real_csv_passes_every_check(tmp_path, im2gps3k_images):
    paths = make_project(tmp_path, im2gps3k_images)
    summary, report, quarantine = build(paths)
    assert report.passed and report.row_count_ok, report.message
    assert summary["rows"] == report.rows_in == 2997
    assert quarantine == {}
    assert len(read_manifest(paths.benchmark_manifest("im2gps3k"))) == 2997


def corrupt(frame: pd.DataFrame, images: Path) -> dict[str, str]:
    """Damage some rows in place; returns {id: expected words in its reason}."""
    ids = list(frame["IMG_ID"])
    expected: dict[str, str] = {}
    frame.loc[0, "LAT"] = float("nan")
    expected[ids[0]] = "lat is missing"
    frame.loc[1, "LON"] = float("nan")
    expected[ids[1]] = "lon is missing"
    frame.loc[2, "LAT"] = 95.5
    expected[ids[2]] = "lat 95.5 outside [-90, 90]"
    frame.loc[3, "LON"] = -200.0
    expected[ids[3]] = "lon -200.0 outside [-180, 180]"
    frame.loc[5, "IMG_ID"] = ids[4]  # a duplicate row: both copies go
    expected[ids[4]] = "duplicate id"
    (images / ids[6]).unlink()
    expected[ids[6]] = "image: file not found"
    (images / ids[7]).write_bytes(b"")
    expected[ids[7]] = "image: empty file (0 bytes)"
    whole = tiny_jpeg(300)
    (images / ids[8]).write_bytes(whole[: len(whole) // 2])
    expected[ids[8]] = "image: truncated image"
    (images / ids[9]).write_text("<html>not found</html>")
    expected[ids[9]] = "image: not an image"
    small = io.BytesIO()
    Image.new("RGB", (8, 40)).save(small, "JPEG")
    (images / ids[10]).write_bytes(small.getvalue())
    expected[ids[10]] = "image too small: shortest side 8 px"
    return expected


def test_corrupted_copy_quarantines_each_bad_id_and_the_rest_proceed(tmp_path, im2gps3k_images):
    frame = pd.read_csv(IM2GPS3K)
    paths = make_project(tmp_path, im2gps3k_images)
    images = tmp_path / "data" / "raw" / "im2gps3k" / "images"
    expected = corrupt(frame, images)
    frame.to_csv(tmp_path / "data" / "raw" / "im2gps3k" / "im2gps3k_places365.csv", index=False)

    summary, report, quarantine = build(paths)
    assert set(quarantine) == set(expected)
    for image_id, words in expected.items():
        assert words in quarantine[image_id], (image_id, quarantine[image_id])
    bad_rows = len(expected) + 1  # the duplicated id stands for two rows
    assert report.rows_quarantined == bad_rows
    assert report.passed, report.message  # 12 of 2997 rows: under the 5 % limit
    accepted = read_manifest(paths.benchmark_manifest("im2gps3k"))
    assert len(accepted) == summary["rows"] == 2997 - bad_rows
    assert not set(accepted["id"]) & set(expected)
    assert report.failures_by_rule["image_decodable"] == 4


def test_over_the_limit_the_gate_fails(tmp_path, im2gps3k_images):
    frame = pd.read_csv(IM2GPS3K)
    frame.loc[:199, "LAT"] = 100.0  # 200 of 2997 rows (6.7 %), limit 5 %
    paths = make_project(tmp_path, im2gps3k_images, frame)
    _, report, quarantine = build(paths)
    assert not report.passed
    assert "over the limit" in report.message
    assert len(quarantine) == 200
    assert len(read_manifest(paths.benchmark_manifest("im2gps3k"))) == 2797


def test_wrong_row_count_fails_a_known_dataset(tmp_path, im2gps3k_images):
    frame = pd.read_csv(IM2GPS3K).head(2500)
    paths = make_project(tmp_path, im2gps3k_images, frame)
    _, report, quarantine = build(paths)
    assert not report.passed and not report.row_count_ok
    assert "outside the expected range [2997, 2997]" in report.message
    assert quarantine == {}
