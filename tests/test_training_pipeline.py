"""The dual-view variant through the real graph at tiny size: Dagster, the segmentation cache,
the backbone assets, MLflow tracking and registry, retrieval, and `geoloc predict`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient
from PIL import Image

from geoloc_assets.definitions import build_definitions
from geoloc_assets.runner import (
    materialize_selection,
    observe_raw_data,
    project_instance,
    selected_keys,
)
from geoloc_assets.staleness import asset_states
from geoloc_core.data.manifest import read_manifest
from geoloc_core.paths import ProjectPaths
from geoloc_core.predict.predictor import predict_images
from tests.asset_sets import BELOW_MODEL

BENCHMARKS = ["demo-street", "demo-unseen"]


@pytest.fixture
def dualgeo_project(tiny_project: Path, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    # mlflow.set_tracking_uri (called by the MLflow resource) exports this variable, so an
    # earlier test in the same process would otherwise redirect this project's tracking.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params_file = tiny_project / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["model"]["variant"] = "dualgeo"
    params["backbone"]["pretrain_epochs"] = 2
    params["benchmarks"]["names"] = list(BENCHMARKS)
    params["confidence"]["benchmark"] = BENCHMARKS[0]  # no validation here: calibrate on one
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    return tiny_project


def materialize(root: Path):
    defs = build_definitions(root)
    instance = project_instance(root)
    observe_raw_data(defs, instance)
    keys = selected_keys(defs, sorted(defs.resolve_asset_graph().all_group_names), [])
    return defs, instance, materialize_selection(defs, instance, keys, BENCHMARKS)


def stale_after(root: Path, section: str, key: str, value) -> set[str]:
    params_file = root / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    before = params[section][key]
    params[section][key] = value
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        states = asset_states(build_definitions(root), project_instance(root), BENCHMARKS)
    finally:
        params[section][key] = before
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    return {s.asset for s in states if s.status != "fresh"}


@pytest.mark.slow
def test_dualgeo_graph_trains_tracks_and_predicts(dualgeo_project):
    root = dualgeo_project
    defs, instance, outcomes = materialize(root)
    assert all(o.success for o in outcomes), outcomes
    paths = ProjectPaths(root)
    for benchmark in BENCHMARKS:
        assert len(read_manifest(paths.predictions(benchmark))) == 6

    client = MlflowClient(paths.tracking_uri)
    experiment = client.get_experiment_by_name("geoloc")
    [training] = client.search_runs(
        [experiment.experiment_id], "tags.`dagster.asset_key` = 'alignment_model'"
    )
    assert training.data.tags["variant"] == "dualgeo"
    run_id = training.info.run_id
    for metric in ("train_loss", "loss_fused_gps", "loss_seg_gps", "temperature_seg_gps"):
        assert len(client.get_metric_history(run_id, metric)) >= 2, metric
    assert len(client.get_metric_history(run_id, "val_acc_25km")) == 2  # one per epoch
    artifacts = {a.path for a in client.list_artifacts(run_id, "checkpoint")}
    assert artifacts == {"checkpoint/last.pt"}
    [version] = client.search_model_versions("name = 'geoloc-alignment'")
    assert version.run_id == run_id and version.tags["variant"] == "dualgeo"
    states = asset_states(defs, instance, BENCHMARKS)
    assert {s.status for s in states} == {"fresh"}, [s for s in states if s.status != "fresh"]

    # Changing model.* or train.* re-trains and what follows it, and re-runs nothing upstream:
    # the backbone is neither re-pretrained nor re-run ...
    assert stale_after(root, "train", "epochs", 3) == BELOW_MODEL
    assert stale_after(root, "model", "variant", "dualgeo+text") == BELOW_MODEL
    # ... and changing what comes after the model never does.
    assert "alignment_model" not in stale_after(root, "retrieval", "top_k", 3)
    assert "alignment_model" not in stale_after(root, "embeddings", "batch_size", 8)

    # `geoloc predict` on a project image uses its cached segmentation ...
    street = read_manifest(paths.benchmark_manifest("demo-street"))
    [result] = predict_images(root, [root / street["image"].iloc[0]], top_k=3)
    assert result["error"] is None and len(result["neighbours"]) == 3
    # ... and refuses a new photo it cannot segment, saying what to do.
    photo = root / "photo.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(photo)
    with pytest.raises(ValueError, match=r"segmentation\.provider to segformer or mask2former"):
        predict_images(root, [photo])
