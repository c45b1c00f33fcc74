"""`geoloc preflight`: with the demo it says all is ready; with the full profile on a machine
without its weights, data, GPU and key it names each one with the command that fixes it, and
prints its disk and time estimates; once they are there (a Hugging Face cache laid out as the hub
writes it, the data files, a GPU) the same check passes."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from geoloc_assets.cli import main
from geoloc_core.preflight import run_preflight
from geoloc_core.preflight.data import csv_rows
from geoloc_core.profiles import switch

REPO = Path(__file__).resolve().parents[1]
HUB_MODELS = ("timm/vit_large_patch14_clip_224.openai", "nvidia/segformer-b5-finetuned-ade-640-640")


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    """params.yaml, the profiles and the measurements, an empty Hugging Face cache, no key."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    shutil.copytree(REPO / "profiles", root / "profiles")
    (root / "benchmarks").mkdir()
    shutil.copy(REPO / "benchmarks" / "results.json", root / "benchmarks" / "results.json")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("GEOLOC_LMM_API_KEY", raising=False)
    return root


def demo_world(root: Path) -> None:
    folder = root / "data" / "raw" / "demo"
    folder.mkdir(parents=True)
    (folder / "manifest.csv").write_text("id,image,lat,lon,split\n")


def test_demo_is_ready(project: Path, capsys) -> None:
    demo_world(project)
    assert main(["--root", str(project), "preflight"]) == 0
    out = capsys.readouterr().out
    assert "profile demo" in out and "ready: weights, data, devices and disk" in out
    report = run_preflight(project, gpu=False)
    features = next(s for s in report.stages if s.stage == "features")
    assert features.items == 300 * 7 + 150 * 2 + 100 * 2  # reference + validation + benchmarks
    assert features.bytes_per_item > 2 * 128 * 17  # fp16 pooled + 16 tokens at the demo width
    assert features.seconds and "measured" in features.basis


def test_full_profile_here_names_every_missing_thing_with_its_fix(project: Path, capsys) -> None:
    switch(project, "full")
    assert main(["--root", str(project), "preflight"]) == 1
    out = capsys.readouterr().out
    fixes = [line.strip().removeprefix("fix: ") for line in out.splitlines() if "fix:" in line]
    # the hub models by their fetch catalogue names (open_clip's ViT-L/14, SegFormer-B5)
    for name in ("mp16pro", "im2gps3k", "yfcc4k", "open-clip-vit-l-14", "segformer-b5-ade-640"):
        assert f"geoloc fetch {name}" in fixes, name
    assert "export GEOLOC_LMM_API_KEY=<your key>" in out
    report = run_preflight(project, gpu=False)
    assert {p.kind for p in report.problems} >= {"weights", "data", "gpu", "secret"}
    features = next(s for s in report.stages if s.stage == "features")
    assert features.items > 4_600_000 and features.bytes_per_item > 2 * 768 * 17
    assert features.disk_bytes > 100e9 and features.gpu_seconds is not None
    assert "| features | 4,6" in out and "GB" in out and "time on 1 GPU" in out


def hub_file(cache: Path, repo: str, filename: str) -> None:
    """A file as huggingface_hub lays out its cache: refs/main -> snapshots/<rev>/filename."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text("0" * 40)
    snapshot = folder / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True, exist_ok=True)
    (snapshot / filename).write_text("{}")


def test_full_profile_is_ready_once_everything_is_there(project: Path, monkeypatch) -> None:
    switch(project, "full")
    from huggingface_hub import constants

    cache = Path(constants.HF_HUB_CACHE)
    hub_file(cache, HUB_MODELS[0], "open_clip_model.safetensors")
    hub_file(cache, HUB_MODELS[1], "config.json")
    hub_file(cache, HUB_MODELS[1], "model.safetensors")
    raw = project / "data" / "raw"
    for name in ("im2gps3k", "yfcc4k"):
        (raw / name / "images").mkdir(parents=True)
        (raw / name / f"{name}_places365.csv").write_text("IMG_ID,LAT,LON\na.jpg,1,2\nb.jpg,3,4\n")
    (raw / "mp16pro").mkdir()
    (raw / "mp16pro" / "MP16_Pro_places365.csv").write_text("IMG_ID,LAT,LON\n" + "x,1,2\n" * 50)
    tarfile.open(raw / "mp16pro" / "mp-16-images.tar", "w").close()
    monkeypatch.setenv("GEOLOC_LMM_API_KEY", "test-key")
    report = run_preflight(project, gpu=True)
    assert report.ready, report.as_text()
    assert report.device == "cuda"
    assert next(s for s in report.stages if s.stage == "features").items == 50 + 2 + 2


def test_csv_rows_counts_small_files_exactly_and_estimates_large_ones(tmp_path: Path) -> None:
    small = tmp_path / "small.csv"
    small.write_text("a,b\n1,2\n3,4")
    assert csv_rows(small) == 2
    large = tmp_path / "large.csv"
    large.write_text("id,lat\n" + "".join(f"{i:09d},1.5\n" for i in range(200_000)))
    assert abs(csv_rows(large) - 200_000) < 200
