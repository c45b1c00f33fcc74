"""`geoloc fetch` over plain HTTP (resumed, checksummed, a download page refused), the data report
on the real IM2GPS3k CSV with photos missing, unreadable and without a row, data.dvc updated by
`dvc add` in a temp git repository, the 25,600-row YFCC file refused, and the catalogue."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hub_server import FakeHub, HubServer
from PIL import Image

from geoloc_assets.cli import main
from geoloc_core.fetch.catalogue import Catalogue, CatalogueError, load_catalogue
from geoloc_core.fetch.checksums import FetchError
from geoloc_core.fetch.command import fetch, params_mismatches, summary
from geoloc_core.fetch.dvc_record import dvc_executable, dvc_md5
from geoloc_core.fetch.lock import LOCK_NAME

REPO = Path(__file__).resolve().parent.parent
IM2GPS3K_CSV = Path("/work/shared/reference/im2gps3k_places365.csv")
LICENCE = {"name": "test", "terms": "photos for research only", "url": "https://example.org/l"}


def jpeg(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (seed * 40 % 256, 90, 160)).save(out, "JPEG")
    return out.getvalue()


def http_entry(url: str, to: str, **extra) -> Catalogue:
    return Catalogue.model_validate({"entries": {"thing": {
        "description": "one file", "licence": LICENCE, "http": [{"url": url, "to": to, **extra}],
    }}})


@pytest.fixture
def root(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "params.yaml", project / "params.yaml")
    return project


@pytest.fixture
def server():
    with HubServer(FakeHub()) as hub:
        yield hub


def test_plain_http_resumes_checks_and_refuses_pages(server, root):
    data = os.urandom(200_000)
    server.plain["file.bin"] = data
    server.cut_once.add("/plain/file.bin")
    good = http_entry(f"{server.url}/plain/file.bin", "data/raw/x/file.bin",
                      sha256=hashlib.sha256(data).hexdigest())
    result = fetch("thing", root, catalogue=good, report=False, dvc=False)
    assert (root / "data/raw/x/file.bin").read_bytes() == data
    gets = [r for r in server.requests if r.path == "/plain/file.bin"]
    assert [(r.range, r.sent) for r in gets] == [(None, 100_000), ("bytes=100000-", 100_000)]
    assert result.received == 200_000

    seen = len(server.requests)
    fetch("thing", root, catalogue=good, report=False, dvc=False)
    assert server.requests[seen:] == []  # present and matching its sha256

    server.plain["other.bin"] = data
    wrong = http_entry(f"{server.url}/plain/other.bin", "data/raw/x/other.bin", sha256="0" * 64)
    with pytest.raises(FetchError, match="fail their check twice"):
        fetch("thing", root, catalogue=wrong, report=False, dvc=False)
    assert not (root / "data/raw/x/other.bin").exists()

    page = http_entry(f"{server.url}/page/file.zip", "data/raw/x/file.zip")
    with pytest.raises(FetchError, match="web page"):
        fetch("thing", root, catalogue=page, report=False, dvc=False)


def test_download_page_file_put_by_hand_is_recorded_then_verified(server, root):
    entry = http_entry(f"{server.url}/page/photos.zip", "artifacts/cache/downloads/p/photos.zip",
                       download_page=True, extract_images_to="data/raw/p/images")
    with pytest.raises(FetchError, match="download page"):
        fetch("thing", root, catalogue=entry, report=False, dvc=False)
    archive = root / "artifacts/cache/downloads/p/photos.zip"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("photos/a.jpg", jpeg(1))
        z.writestr("photos/sub/b.jpg", jpeg(2))
        z.writestr("photos/notes.txt", b"not a photo")
    fetch("thing", root, catalogue=entry, report=False, dvc=False)
    assert sorted(p.name for p in (root / "data/raw/p/images").iterdir()) == ["a.jpg", "b.jpg"]
    recorded = yaml.safe_load((root / LOCK_NAME).read_text())["thing"]["files"]
    assert recorded[f"{server.url}/page/photos.zip"]["sha256"] == hashlib.sha256(
        archive.read_bytes()).hexdigest()
    archive.write_bytes(archive.read_bytes()[:-10])  # damaged after it was recorded
    with pytest.raises(FetchError, match="fails its check"):
        fetch("thing", root, catalogue=entry, report=False, dvc=False)
    assert server.bodies() == []  # a download page is never downloaded


def git_dvc_repo(root: Path) -> None:
    """A git + DVC repository whose data/raw is recorded the project's way: data.dvc at the
    root (a copy of the project's, whose md5 is the demo world's)."""
    (root / "data/raw/demo").mkdir(parents=True)
    (root / "data/raw/demo/manifest.csv").write_text("id\n")
    shutil.copy(REPO / "data.dvc", root / "data.dvc")
    dvc = dvc_executable()
    assert dvc, "dvc is not installed: run `make install`"
    for command in (["git", "init", "-q"], [dvc, "init", "-q"]):
        subprocess.run(command, cwd=root, check=True, capture_output=True)


def test_im2gps3k_fetch_report_and_data_dvc(server, root, monkeypatch):
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    git_dvc_repo(root)
    before = dvc_md5(root)
    rows = pd.read_csv(IM2GPS3K_CSV)
    first, second, third = rows["IMG_ID"].iloc[:3]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(f"im2gps3ktest/{first}", jpeg(1))
        z.writestr(f"im2gps3ktest/{second}", jpeg(2))
        z.writestr(f"im2gps3ktest/{third}", jpeg(3)[:120])  # truncated
        z.writestr("im2gps3ktest/extra_no_row.jpg", jpeg(4))
    server.plain["im2gps3k.csv"] = IM2GPS3K_CSV.read_bytes()
    server.plain["im2gps3ktest.zip"] = archive.getvalue()
    entry = Catalogue.model_validate({"entries": {"im2gps3k": {
        "description": "IM2GPS3k from the test server", "licence": LICENCE, "dataset": "im2gps3k",
        "http": [
            {"url": f"{server.url}/plain/im2gps3k.csv",
             "to": "data/raw/im2gps3k/im2gps3k_places365.csv"},
            {"url": f"{server.url}/plain/im2gps3ktest.zip",
             "to": "artifacts/cache/downloads/im2gps3k/im2gps3ktest.zip",
             "extract_images_to": "data/raw/im2gps3k/images"},
        ],
    }}})
    result = fetch("im2gps3k", root, catalogue=entry)

    report = result.report
    assert not report.refused
    assert "2,997 CSV rows (as published)" in report.lines
    problems = dict(zip(report.problems["id"], report.problems["problem"], strict=True))
    assert problems[third].startswith("unreadable: truncated")
    assert problems["extra_no_row.jpg"].startswith("no row")
    assert first not in problems and second not in problems
    assert sum(p.startswith("missing") for p in problems.values()) == 2997 - 3
    assert len(pd.read_csv(root / "reports/fetch/im2gps3k-problems.csv")) == len(problems)
    text = summary(result, root)
    assert "G3 issue #6" in text and "photos for research only" in text

    after = dvc_md5(root)
    assert after != before and result.dvc.startswith("data.dvc updated")
    outs = yaml.safe_load((root / "data.dvc").read_text())["outs"][0]
    assert outs["path"] == "data/raw" and not (root / "data/raw.dvc").exists()
    assert outs["nfiles"] == 1 + 1 + 4  # demo manifest, the CSV, the four photos


def test_yfcc25600_is_refused_by_the_cli(server, root, tmp_path, capsys):
    header = "IMG_ID,AUTHOR,LAT,LON\n"
    body = "".join(f"{i}_x.jpg,a,{(i % 170) - 85}.5,{(i % 340) - 170}.25\n" for i in range(25_600))
    server.plain["yfcc.csv"] = (header + body).encode()
    catalogue_file = tmp_path / "catalogue.yaml"
    catalogue_file.write_text(yaml.safe_dump({"entries": {"yfcc4k": {
        "description": "a YFCC list", "licence": LICENCE, "dataset": "yfcc4k",
        "http": [{"url": f"{server.url}/plain/yfcc.csv",
                  "to": "data/raw/yfcc4k/yfcc4k_places365.csv"}],
    }}}))
    code = main(["--root", str(root), "fetch", "--catalogue", str(catalogue_file), "--no-dvc",
                 "yfcc4k"])
    out = capsys.readouterr().out
    assert code == 1
    assert "REFUSED" in out and "yfcc25600" in out and "25600 rows" in out
    assert "photos for research only" in out  # the licence is printed all the same


def test_catalogue_loads_and_matches_params(tmp_path):
    catalogue = load_catalogue()
    assert {"mp16pro", "im2gps3k", "yfcc4k", "g3-checkpoint", "clip-vit-l-14",
            "segformer-b5-ade-640"} <= set(catalogue.entries)
    data = yaml.safe_load((REPO / "params.yaml").read_text())["data"]
    for entry in catalogue.entries.values():
        assert params_mismatches(entry, data) == []
    assert catalogue.entries["segformer-b5-ade-640"].hub.repo_id == yaml.safe_load(
        (REPO / "params.yaml").read_text())["segmentation"]["model_id"]

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"entries": {"x": {
        "description": "d", "licence": LICENCE,
        "http": [{"url": "https://example.org/a.csv", "to": "../outside.csv"}]}}}))
    with pytest.raises(CatalogueError, match=r"entries\.x\.http\.0.*without '\.\.'"):
        load_catalogue(bad)
    with pytest.raises(CatalogueError, match="'nope' is not in the fetch catalogue"):
        catalogue.entry("nope")
