"""Shared fixtures: a tiny project (params + demo world) in a temp directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent

TINY_OVERRIDES = {
    "demo_world": {
        "reference_sites": 18,
        "reference_views": 3,
        "validation_views": 1,
        "street_sites": 6,
        "street_views": 1,
        "unseen_sites": 6,
        "unseen_views": 1,
        "workers": 1,
    },
    "train": {"epochs": 2, "batch_size": 16},
    "segmentation": {"n_shards": 2, "progress": False},
    "backbone": {"pretrain_epochs": 2, "pretrain_batch_size": 32},
    "features": {"n_shards": 2},
}


def tiny_params() -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in TINY_OVERRIDES.items():
        params[section].update(values)
    return params


def make_tiny_project(root: Path, with_code: bool = False) -> Path:
    """A project root with tiny params and a generated demo world (and a copy of the code)."""
    from geoloc_core.demo_world.generate import DemoWorldConfig, generate_demo_world

    root.mkdir(parents=True, exist_ok=True)
    params = tiny_params()
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    generate_demo_world(
        root / params["data"]["root"],
        DemoWorldConfig.from_mapping(params["demo_world"]),
        progress=False,
    )
    if with_code:
        for name in ("geoloc_core", "geoloc_assets"):
            shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("dvc.yaml", ".dvcignore"):
            shutil.copy(REPO / name, root / name)
    return root


@pytest.fixture(scope="session")
def tiny_world_template(tmp_path_factory) -> Path:
    return make_tiny_project(tmp_path_factory.mktemp("tiny-template"))


@pytest.fixture
def tiny_project(tiny_world_template: Path, tmp_path: Path) -> Path:
    """A fresh copy per test, so tests never see each other's outputs."""
    target = tmp_path / "project"
    shutil.copytree(tiny_world_template, target)
    return target
