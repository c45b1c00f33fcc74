"""MP16-Pro: tar archives indexed once (cached by size and mtime) and the adapter that finds
each IMG_ID's member and keeps the place fields the CSV ships."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from geoloc_core.data import tar_index
from geoloc_core.data.decode import read_image_bytes
from geoloc_core.data.images import load_rgb
from geoloc_core.data.schema import SOURCE_PROBLEM
from geoloc_core.data.sources.mp16pro import mp16pro_manifest
from geoloc_core.data.tar_index import load_tar_index, read_member


def jpeg(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(autouse=True)
def index_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "tar-index"
    monkeypatch.setenv(tar_index.INDEX_DIR_ENV, str(folder))
    tar_index._cached_index.cache_clear()
    return folder


def test_archive_is_indexed_once_and_reindexed_when_it_changes(tmp_path, index_dir, monkeypatch):
    archive = write_tar(tmp_path / "a.tar", {"x/1.jpg": b"one", "./x/2.jpg": b"two"})
    index = load_tar_index(archive)
    assert index.member_names() == ["x/1.jpg", "x/2.jpg"]
    assert len(list(index_dir.glob("*.npz"))) == 1

    tar_index._cached_index.cache_clear()
    monkeypatch.setattr(tar_index, "scan_archive", lambda _a: pytest.fail("rescanned"))
    assert load_tar_index(archive).find("x/2.jpg") is not None  # served from the disk cache
    monkeypatch.undo()
    monkeypatch.setenv(tar_index.INDEX_DIR_ENV, str(index_dir))

    write_tar(archive, {"x/1.jpg": b"one", "x/3.jpg": b"three!"})
    os.utime(archive, ns=(1, 1))  # a different mtime: a different index file
    assert load_tar_index(archive).member_names() == ["x/1.jpg", "x/3.jpg"]
    assert len(list(index_dir.glob("*.npz"))) == 2


def test_member_bytes_are_read_by_offset(tmp_path):
    archive = write_tar(tmp_path / "a.tar", {"x/1.jpg": b"one", "x/2.jpg": b"second"})
    location = tar_index.TarMember(archive, "x/2.jpg")
    assert read_member(location) == b"second"
    with pytest.raises(FileNotFoundError, match=r"no member 'x/9\.jpg'"):
        read_member(tar_index.TarMember(archive, "x/9.jpg"))


def test_compressed_archive_is_refused_with_the_fix(tmp_path):
    archive = tmp_path / "b.tar"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("x.jpg")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(tar_index.TarIndexError, match=r"repack it as a plain \.tar"):
        load_tar_index(archive)


def test_adapter_finds_members_across_archives_and_keeps_place_fields(tmp_path):
    root = tmp_path / "project"
    raw = root / "data" / "raw" / "mp16pro"
    raw.mkdir(parents=True)
    write_tar(raw / "mp-16-images-0.tar", {"mp-16-images/3f/a0/1.jpg": jpeg((255, 0, 0))})
    write_tar(
        raw / "mp-16-images-1.tar",
        {"mp-16-images/3f/a0/2.jpg": jpeg((0, 255, 0)), "mp-16-images/77/01/3.jpg": b"x"},
    )
    pd.DataFrame(
        {
            "IMG_ID": ["3f/a0/1.jpg", "3f/a0/2.jpg", "77/01/3.jpg", "aa/bb/404.jpg"],
            "AUTHOR": ["a", "b", "c", "d"],
            "LAT": [48.8584, -33.8568, 10.0, 0.0],
            "LON": [2.2945, 151.2153, 20.0, 0.0],
            "neighbourhood": ["Gros-Caillou", "", "", ""],
            "city": ["Paris", "Sydney", "", ""],
            "county": ["Paris", "", "", ""],
            "state": ["Île-de-France", "New South Wales", "", ""],
            "region": ["Metropolitan France", "", "", ""],
            "country": ["France", "Australia", "", ""],
            "country_code": ["fr", "au", "", ""],
            "continent": ["Europe", "Oceania", "", ""],
            "S3_Label": [1, 2, 0, 0],
        }
    ).to_csv(raw / "MP16_Pro_places365.csv", index=False)

    manifest = mp16pro_manifest(
        raw / "MP16_Pro_places365.csv", ["data/raw/mp16pro/mp-16-images-*.tar"], root, 0.0
    )
    assert manifest["image"].iloc[0] == (
        "data/raw/mp16pro/mp-16-images-0.tar#mp-16-images/3f/a0/1.jpg"
    )
    assert manifest["image"].iloc[1].startswith("data/raw/mp16pro/mp-16-images-1.tar#")
    assert manifest[SOURCE_PROBLEM].iloc[3].startswith("no member ending in 'aa/bb/404.jpg'")
    assert list(manifest["split"]) == ["reference"] * 4
    assert manifest["neighbourhood"].iloc[0] == "Gros-Caillou"
    assert list(manifest["country_code"].iloc[:2]) == ["FR", "AU"]
    # The location joins onto the project root the way other steps join it, and decodes.
    red = load_rgb(root / manifest["image"].iloc[0])
    assert red[0, 0, 0] > 200 and red[0, 0, 1] < 60
    assert read_image_bytes(root / manifest["image"].iloc[2]) == b"x"


def test_missing_archives_name_the_pattern(tmp_path):
    csv = tmp_path / "MP16_Pro_places365.csv"
    pd.DataFrame({"IMG_ID": ["a/b.jpg"], "LAT": [1.0], "LON": [2.0]}).to_csv(csv, index=False)
    with pytest.raises(ValueError, match=r"no archive matches params data\.mp16pro_archives"):
        mp16pro_manifest(csv, ["nothing-*.tar"], tmp_path, 0.0)
