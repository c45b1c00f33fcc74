"""Training interrupted after an epoch resumes to the same final weights as an uninterrupted run,
through the real steps (backbone features cache, captions, segmentation, checkpoints)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from geoloc_core.geo.metrics import DEFAULT_THRESHOLDS_KM
from geoloc_core.paths import ProjectPaths
from geoloc_core.steps.training import train_model
from tests.test_training_helpers import TINY_MODEL, TINY_TRAIN, build_tiny_inputs


@pytest.fixture(scope="module")
def tiny_inputs(tiny_world_template: Path, tmp_path_factory) -> Path:
    return build_tiny_inputs(tiny_world_template, tmp_path_factory.mktemp("inputs") / "project")


def run(root: Path, variant: str, stop_after_epoch: int | None = None) -> dict:
    return train_model(
        ProjectPaths(root),
        {**TINY_MODEL, "variant": variant},
        TINY_TRAIN,
        DEFAULT_THRESHOLDS_KM,
        fingerprint="test",
        stop_after_epoch=stop_after_epoch,
        progress=False,
    )


def weights(root: Path) -> dict[str, torch.Tensor]:
    return torch.load(ProjectPaths(root).model_weights, weights_only=True)


@pytest.mark.parametrize("variant", ["dualgeo+text", "image-only"])
def test_resume_reaches_the_same_weights(tiny_inputs, tmp_path, variant):
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    shutil.copytree(tiny_inputs, straight)
    shutil.copytree(tiny_inputs, interrupted)
    full = run(straight, variant)
    assert full["epochs"] == TINY_TRAIN["epochs"]
    first = run(interrupted, variant, stop_after_epoch=1)
    assert first["epochs"] == 1
    assert not all(
        torch.equal(a, b)
        for a, b in zip(weights(interrupted).values(), weights(straight).values(), strict=True)
    )
    resumed = run(interrupted, variant)
    assert resumed["epochs"] == TINY_TRAIN["epochs"]
    expected, actual = weights(straight), weights(interrupted)
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
    assert resumed["val_acc_2500km"] == full["val_acc_2500km"]


def test_other_settings_do_not_resume(tiny_inputs, tmp_path):
    root = tmp_path / "project"
    shutil.copytree(tiny_inputs, root)
    run(root, "g3", stop_after_epoch=1)
    # A checkpoint of g3 must not be resumed as dualgeo's: it starts from epoch 0.
    summary = run(root, "dualgeo", stop_after_epoch=1)
    assert summary["epochs"] == 1
    assert "fused_gps" in " ".join(weights(root))
