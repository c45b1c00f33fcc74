"""SIGKILL in the middle of the long steps — backbone pretraining, backbone features, training,
reference embeddings, the index — at a fixed point (geoloc_core/kill_point.py: the moment a
complete file is written but not yet in place, the worst one), then run again: finished work is
kept, the partial file never looks finished, and the result equals the uninterrupted run's byte
for byte (the session's template). The LMM stage has its own test (test_lmm_resume.py), place
texts theirs (test_place_texts_resume.py), segmentation its own (test_segmentation_resume.py)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from geoloc_core.geo.metrics import DEFAULT_THRESHOLDS_KM
from geoloc_core.kill_point import MARKER_ENV, POINT_ENV
from geoloc_core.params import load_params
from geoloc_core.paths import ProjectPaths
from geoloc_core.retrieval.index import load_index
from geoloc_core.segmentation.sharding import shard_keys
from geoloc_core.steps.backbone import build_backbone_features, build_backbone_weights
from geoloc_core.steps.indexing import build_index, embed_reference_shard
from geoloc_core.steps.training import train_model
from geoloc_core.training.loop import CHECKPOINT_NAME
from tests.conftest import REPO

CHILD = """
import sys
from pathlib import Path
from geoloc_core.params import load_params
from geoloc_core.paths import ProjectPaths
from geoloc_core.segmentation.sharding import shard_keys
from geoloc_core.geo.metrics import DEFAULT_THRESHOLDS_KM
from geoloc_core.steps.indexing import build_index, embed_reference_shard
from geoloc_core.steps.backbone import build_backbone_features, build_backbone_weights
from geoloc_core.steps.training import train_model

root, step = Path(sys.argv[1]), sys.argv[2]
paths, params = ProjectPaths(root), load_params(root)
keys = shard_keys(params["features"]["n_shards"])
quiet = lambda message: None
if step == "features":
    for key in keys:
        names = params["benchmarks"]["names"]
        build_backbone_features(paths, params["features"], names, key, quiet)
elif step == "pretraining":
    build_backbone_weights(paths, params["backbone"], "kill-test")
elif step == "training":
    train_model(paths, params["model"], params["train"], DEFAULT_THRESHOLDS_KM, "kill-test",
                progress=False)
elif step == "embeddings":
    for key in keys:
        embed_reference_shard(paths, params["embeddings"], key, len(keys))
else:
    build_index(paths, params["index"], keys, log=quiet)
"""


@pytest.fixture
def project(materialized_template: Path, tmp_path: Path) -> ProjectPaths:
    root = tmp_path / "project"
    shutil.copytree(materialized_template, root, ignore=shutil.ignore_patterns(".dagster"))
    return ProjectPaths(root)


def kill_at(paths: ProjectPaths, step: str, point: str, tmp_path: Path) -> None:
    """Run step in a child process until it reaches point, then SIGKILL it."""
    marker = tmp_path / f"{step}-killed"
    env = os.environ | {"PYTHONPATH": str(REPO), POINT_ENV: point, MARKER_ENV: str(marker)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(paths.root), step],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 180
    try:
        while not marker.exists():
            if child.poll() is not None:
                raise AssertionError(f"{step} ended before {point}: {child.stderr.read()[-2000:]}")
            assert time.monotonic() < deadline, f"{step} never reached {point}"
            time.sleep(0.01)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_killed_features_keep_the_finished_shard_and_equal_a_straight_run(
    project, materialized_template, tmp_path
):
    params = load_params(project.root)
    keys = shard_keys(params["features"]["n_shards"])
    directory = project.features_dir
    shutil.rmtree(directory)
    kill_at(project, "features", "feature-shard-written:2", tmp_path)  # in the second shard
    finished = sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))
    partial = sorted(p.name for p in directory.iterdir() if p.name.startswith("."))
    assert len(finished) == 1 and len(partial) == 1 and partial[0].endswith(".partial")
    outcomes = [
        build_backbone_features(
            project, params["features"], params["benchmarks"]["names"], key, lambda m: None
        )
        for key in keys
    ]
    assert [o["kept"] for o in outcomes] == [1, 0]  # the finished shard was not recomputed
    assert files_under(directory) == files_under(ProjectPaths(materialized_template).features_dir)


def test_a_killed_embedding_shard_is_never_indexed_and_its_rerun_equals(
    project, materialized_template, tmp_path
):
    params = load_params(project.root)
    keys = shard_keys(params["features"]["n_shards"])
    for path in project.embedding_shard(keys[0]):
        path.unlink()
    kill_at(project, "embeddings", "embedding-vectors-written:1", tmp_path)
    vectors, _, record = project.embedding_shard(keys[0])
    assert vectors.is_file() and not record.exists()  # vectors alone: not a finished shard
    with pytest.raises(FileNotFoundError, match=rf"reference_embeddings\[{keys[0]}\]"):
        build_index(project, params["index"], keys)
    embed_reference_shard(project, params["embeddings"], keys[0], len(keys))
    template = ProjectPaths(materialized_template)
    pairs = zip(project.embedding_shard(keys[0]), template.embedding_shard(keys[0]), strict=True)
    for mine, theirs in pairs:
        assert mine.read_bytes() == theirs.read_bytes(), mine.name


def test_a_killed_index_build_leaves_no_index_and_its_rerun_equals(
    project, materialized_template, tmp_path
):
    params = load_params(project.root)
    keys = shard_keys(params["features"]["n_shards"])
    template = ProjectPaths(materialized_template)
    shutil.rmtree(project.index_dir)
    kill_at(project, "index", "index-written:1", tmp_path)
    left = {p.name for p in project.index_dir.iterdir()}
    assert left == {"reference.faiss.tmp", "reference.faiss.sha256.tmp"}  # temp names only
    with pytest.raises(FileNotFoundError, match="materialize the retrieval_index"):
        load_index(project.index_file)
    build_index(project, params["index"], keys)
    expected = files_under(template.index_dir)
    expected.pop("settings.json")  # the asset's record of its settings, not the step's output
    assert files_under(project.index_dir) == expected  # index, checksum, meta and record


def checkpoint_epoch(folder: Path) -> int:
    state = torch.load(folder / CHECKPOINT_NAME, weights_only=True, map_location="cpu")
    return int(state["epoch"])


def kill_in_the_second_epochs_checkpoint(paths: ProjectPaths, step: str, tmp_path: Path) -> Path:
    """Kill step once epoch 2's checkpoint is written but not in place; the checkpoint on disk
    must still be epoch 1's, complete (the partial one under a temp name)."""
    name = "backbone" if step == "pretraining" else "alignment"
    folder = paths.checkpoints(name)
    shutil.rmtree(folder, ignore_errors=True)  # the template's finished run must not resume
    kill_at(paths, step, "epoch-checkpoint-written:2", tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == [CHECKPOINT_NAME, "last.tmp"]
    assert checkpoint_epoch(folder) == 1
    return folder


def test_killed_pretraining_resumes_from_its_last_epoch_and_equals_a_straight_run(
    project, materialized_template, tmp_path
):
    params = load_params(project.root)
    assert params["backbone"]["pretrain_epochs"] == 2
    shutil.rmtree(project.backbone_dir)
    folder = kill_in_the_second_epochs_checkpoint(project, "pretraining", tmp_path)
    assert not project.backbone_dir.exists()  # no weights before the last epoch
    epochs_run: list[int] = []
    summary = build_backbone_weights(
        project, params["backbone"], "kill-test", on_epoch=lambda r: epochs_run.append(r.epoch)
    )
    assert epochs_run == [2] and summary["epochs"] == 2  # epoch 1 was not trained again
    assert checkpoint_epoch(folder) == 2
    template = ProjectPaths(materialized_template).backbone_dir
    assert files_under(project.backbone_dir) == files_under(template)


def test_killed_training_resumes_from_its_last_epoch_and_equals_a_straight_run(
    project, materialized_template, tmp_path
):
    params = load_params(project.root)
    assert params["train"]["epochs"] == 2
    shutil.rmtree(project.model_dir)
    kill_in_the_second_epochs_checkpoint(project, "training", tmp_path)
    assert not project.model_weights.exists()
    epochs_run: list[int] = []
    summary = train_model(
        project,
        params["model"],
        params["train"],
        DEFAULT_THRESHOLDS_KM,
        "kill-test",
        on_epoch=lambda r: epochs_run.append(r.epoch),
        progress=False,
    )
    assert epochs_run == [2] and summary["epochs"] == 2
    template = ProjectPaths(materialized_template)
    assert project.model_weights.read_bytes() == template.model_weights.read_bytes()
    history = project.model_dir / "history.csv"
    assert history.read_bytes() == (template.model_dir / "history.csv").read_bytes()


def test_training_killed_within_an_epoch_resumes_at_its_next_batch_and_equals_a_straight_run(
    project, materialized_template, tmp_path
):
    """train.checkpoint_every_steps: 1, killed while the 5th step checkpoint is written (epoch
    2's second batch): the one in place is epoch 2's first batch, and the resumed run trains
    the rest of epoch 2 only, to the template's weights (trained with no step checkpoints)."""
    params = load_params(project.root)
    params["train"]["checkpoint_every_steps"] = 1
    (project.root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.rmtree(project.model_dir)
    folder = project.checkpoints("alignment")
    shutil.rmtree(folder, ignore_errors=True)
    kill_at(project, "training", "step-checkpoint-written:5", tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == [CHECKPOINT_NAME, "last.tmp"]
    state = torch.load(folder / CHECKPOINT_NAME, weights_only=True, map_location="cpu")
    part = state["epoch_part"]
    assert state["epoch"] == 1 and part["batches_done"] == part["count"] == 1
    steps_run: list[int] = []
    epochs_run: list[int] = []
    summary = train_model(
        project,
        params["model"],
        params["train"],
        DEFAULT_THRESHOLDS_KM,
        "kill-test",
        on_step=lambda step, metrics: steps_run.append(step),
        on_epoch=lambda r: epochs_run.append(r.epoch),
        progress=False,
    )
    assert epochs_run == [2] and summary["epochs"] == 2
    assert steps_run[0] == part["step"] + 1  # epoch 2's first batch was not trained again
    template = ProjectPaths(materialized_template)
    assert project.model_weights.read_bytes() == template.model_weights.read_bytes()
    history = project.model_dir / "history.csv"
    assert history.read_bytes() == (template.model_dir / "history.csv").read_bytes()
