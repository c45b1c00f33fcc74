"""`geoloc fetch` against a local server that speaks the hub's download API (tests/hub_server.py):
an interrupted download resumes, a corrupt file is fetched again, the pinned revision is
honoured, and a second fetch downloads nothing; in the hub cache and into data/raw alike."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml
from hub_server import FakeHub, HubServer, Repo

from geoloc_core.fetch.catalogue import Catalogue
from geoloc_core.fetch.command import fetch
from geoloc_core.fetch.lock import LOCK_NAME
from geoloc_core.fetch.outcome import DOWNLOADED, PRESENT, REPLACED

REPO = Path(__file__).resolve().parent.parent
OLD, NEW, NEWER = "a" * 40, "b" * 40, "c" * 40
# huggingface_hub hands its retry only the whole 10 MiB chunks it had read when the connection
# broke (constants.DOWNLOAD_CHUNK_SIZE): the weights must be larger for a resume to show
WEIGHTS = 24 << 20


def payload(seed: str, size: int) -> bytes:
    """Deterministic bytes, different per seed."""
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def model_repo(size: int = WEIGHTS) -> Repo:
    """A model whose weights and config differ between an old commit and main."""
    return Repo(
        refs={"main": NEW},
        commits={
            OLD: {"config.json": b'{"v": "old"}', "model.safetensors": payload("old", size)},
            NEW: {"config.json": b'{"v": "new"}', "model.safetensors": payload("new", size)},
        },
    )


def dataset_repo() -> Repo:
    return Repo(
        refs={"main": NEW},
        commits={
            NEW: {
                "meta.csv": b"IMG_ID,LAT,LON\na.jpg,1.0,2.0\n",
                "images-0.tar": payload("tar0", 200_000),
                "images-1.tar": payload("tar1", 120_000),
                "README.md": b"# card",
            },
        },
    )


def catalogue(revision_model: str = OLD, revision_data: str = "main") -> Catalogue:
    licence = {"name": "test", "terms": "test terms", "url": "https://example.org/licence"}
    return Catalogue.model_validate({"entries": {
        "tiny-model": {
            "description": "a model into the hub cache",
            "licence": licence,
            "hub": {"repo_id": "org/tiny", "repo_type": "model", "revision": revision_model,
                    "files": [{"path": "config.json"}, {"path": "model.safetensors"},
                              {"path": "tokenizer.json", "optional": True}]},
        },
        "tiny-data": {
            "description": "dataset files into data/raw",
            "licence": licence,
            "hub": {"repo_id": "org/tiny-data", "repo_type": "dataset",
                    "revision": revision_data,
                    "files": [{"path": "meta.csv", "to": "data/raw/tiny/meta.csv"},
                              {"path": "images-*.tar", "to": "data/raw/tiny/"}]},
        },
    }})


@pytest.fixture
def hub(tmp_path, monkeypatch):
    fake = FakeHub(repos={("model", "org/tiny"): model_repo(),
                          ("dataset", "org/tiny-data"): dataset_repo()})
    with HubServer(fake) as served:
        monkeypatch.setenv("HF_ENDPOINT", served.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        monkeypatch.delenv("HF_HUB_CACHE", raising=False)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        yield served


@pytest.fixture
def root(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "params.yaml", project / "params.yaml")
    return project


def by_label(result, suffix):
    (found,) = [f for f in result.files if f.label.endswith(suffix)]
    return found


def test_pinned_revision_and_interrupted_download_in_the_hub_cache(hub, root, tmp_path):
    weights = f"/org/tiny/resolve/{OLD}/model.safetensors"
    hub.cut_once.add(weights)
    result = fetch("tiny-model", root, catalogue=catalogue(), report=False, dvc=False)

    # the pinned commit's bytes, not main's, in HF_HOME's cache where from_pretrained looks
    snapshot = tmp_path / "hf-home/hub/models--org--tiny/snapshots" / OLD
    assert (snapshot / "model.safetensors").read_bytes() == payload("old", WEIGHTS)
    assert (snapshot / "config.json").read_bytes() == b'{"v": "old"}'
    assert (tmp_path / "hf-home/hub/models--org--tiny/refs/main").read_text() == OLD
    assert by_label(result, "model.safetensors").status == DOWNLOADED
    assert by_label(result, "tokenizer.json").path is None  # optional, absent: noted

    # the first GET broke off half-way; the retry asked for the rest only
    gets = [r for r in hub.requests if r.method == "GET" and r.path == weights]
    assert len(gets) == 2 and gets[0].range is None and gets[0].sent == WEIGHTS // 2
    assert gets[1].range == f"bytes={10 << 20}-" and gets[1].sent == WEIGHTS - (10 << 20)

    lock = yaml.safe_load((root / LOCK_NAME).read_text())["tiny-model"]
    assert lock["files"]["model.safetensors"] == {
        "size": WEIGHTS, "sha256": hashlib.sha256(payload("old", WEIGHTS)).hexdigest()}


def test_second_fetch_downloads_nothing_and_a_corrupt_file_comes_again(hub, root):
    hub.repos[("model", "org/tiny")] = model_repo(300_000)
    cat = catalogue()
    fetch("tiny-model", root, catalogue=cat, report=False, dvc=False)
    first = fetch("tiny-data", root, catalogue=cat, report=False, dvc=False)
    assert {f.status for f in first.files} == {DOWNLOADED}
    assert (root / "data/raw/tiny/images-1.tar").read_bytes() == payload("tar1", 120_000)
    assert not (root / "data/raw/tiny/README.md").exists()  # not in the catalogue

    seen = len(hub.requests)
    again = [fetch(n, root, catalogue=cat, report=False, dvc=False) for n in ("tiny-model",
                                                                             "tiny-data")]
    assert hub.requests[seen:] == []  # commit pinned, every file verified against fetch.lock
    assert {f.status for r in again for f in r.files if f.path} == {PRESENT}

    # flip bytes in place (same size): the sha256 check catches it, the file is fetched again
    tar = root / "data/raw/tiny/images-0.tar"
    blob = (root.parent / "hf-home/hub/models--org--tiny/snapshots" / OLD /
            "model.safetensors").resolve()
    for path in (tar, blob):
        data = bytearray(path.read_bytes())
        data[1000:1010] = b"corrupted!"
        path.write_bytes(bytes(data))
    seen = len(hub.requests)
    fixed_model = fetch("tiny-model", root, catalogue=cat, report=False, dvc=False)
    fixed_data = fetch("tiny-data", root, catalogue=cat, report=False, dvc=False)
    assert by_label(fixed_model, "model.safetensors").status == REPLACED
    assert by_label(fixed_data, "images-0.tar").status == REPLACED
    assert by_label(fixed_data, "images-1.tar").status == PRESENT
    assert tar.read_bytes() == payload("tar0", 200_000)
    assert blob.read_bytes() == payload("old", 300_000)
    fetched = sorted(r.path.rsplit("/", 1)[1] for r in hub.bodies(seen))
    assert fetched == ["images-0.tar", "model.safetensors"]


def test_branch_revision_is_pinned_by_the_first_fetch(hub, root):
    cat = catalogue()
    hub.cut_once.add(f"/datasets/org/tiny-data/resolve/{NEW}/images-0.tar")
    first = fetch("tiny-data", root, catalogue=cat, report=False, dvc=False)
    tar_gets = [r for r in hub.requests if r.path.endswith("images-0.tar") and r.method == "GET"]
    assert [r.range for r in tar_gets] == [None, "bytes=100000-"]  # resumed into data/raw
    assert tar_gets[1].sent == 100_000 < 200_000
    assert by_label(first, "images-0.tar").received == 200_000

    lock = yaml.safe_load((root / LOCK_NAME).read_text())["tiny-data"]
    assert (lock["revision"], lock["commit"]) == ("main", NEW)
    assert lock["globs"] == {"images-*.tar": ["images-0.tar", "images-1.tar"]}

    # main moves on upstream; the lock keeps the fetched commit until its entry is deleted
    repo = hub.repos[("dataset", "org/tiny-data")]
    repo.commits[NEWER] = {**repo.commits[NEW], "meta.csv": b"IMG_ID,LAT,LON\nb.jpg,3,4\n"}
    repo.refs["main"] = NEWER
    fetch("tiny-data", root, catalogue=cat, report=False, dvc=False)
    assert (root / "data/raw/tiny/meta.csv").read_bytes().endswith(b"a.jpg,1.0,2.0\n")

    text = (root / LOCK_NAME).read_text()
    kept = {k: v for k, v in yaml.safe_load(text).items() if k != "tiny-data"}
    (root / LOCK_NAME).write_text(yaml.safe_dump(kept))
    fetch("tiny-data", root, catalogue=cat, report=False, dvc=False)
    assert (root / "data/raw/tiny/meta.csv").read_bytes().endswith(b"b.jpg,3,4\n")
    assert yaml.safe_load((root / LOCK_NAME).read_text())["tiny-data"]["commit"] == NEWER


def test_split_parts_are_joined_and_then_not_needed(hub, root):
    parts = {"big.tar.part-aa": payload("pa", 70_000), "big.tar.part-ab": payload("pb", 30_000)}
    hub.repos[("dataset", "org/split")] = Repo(refs={"main": NEW}, commits={NEW: parts})
    cat = Catalogue.model_validate({"entries": {"split": {
        "description": "an archive published in parts",
        "licence": {"name": "t", "terms": "t", "url": "https://example.org/l"},
        "hub": {"repo_id": "org/split", "repo_type": "dataset", "revision": "main",
                "files": [{"path": "big.tar*", "to": "data/raw/split/",
                           "parts_to": "artifacts/cache/downloads/split/",
                           "join_into": "data/raw/split/big.tar"}]},
    }}})
    fetch("split", root, catalogue=cat, report=False, dvc=False)
    joined = root / "data/raw/split/big.tar"
    assert joined.read_bytes() == parts["big.tar.part-aa"] + parts["big.tar.part-ab"]
    assert sorted(p.name for p in (root / "data/raw/split").iterdir()) == ["big.tar"]

    shutil.rmtree(root / "artifacts/cache/downloads/split")  # parts deleted to save space
    seen = len(hub.requests)
    again = fetch("split", root, catalogue=cat, report=False, dvc=False)
    assert hub.requests[seen:] == [] and [f.status for f in again.files] == [PRESENT]
