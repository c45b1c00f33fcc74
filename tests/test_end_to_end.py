"""The whole graph at tiny size: real Dagster instance, real MLflow sqlite store, real FAISS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from geoloc_assets.definitions import build_definitions
from geoloc_assets.runner import (
    materialize_selection,
    observe_raw_data,
    project_instance,
    selected_keys,
)
from geoloc_assets.staleness import asset_states
from geoloc_core.paths import ProjectPaths

METRIC_KEYS = {
    "acc_1km",
    "acc_25km",
    "acc_200km",
    "acc_750km",
    "acc_2500km",
    "median_km",
    "mean_km",
    "n",
}
BENCHMARKS = ["demo-street", "demo-unseen"]
ASSETS = [
    "reference_manifest",
    "benchmark_manifest",
    "segmentation_cache",
    "place_texts",
    "backbone_weights",
    "backbone_features",
    "alignment_model",
    "reference_embeddings",
    "retrieval_index",
    "predictions",
    "metrics",
    "report",
]


@pytest.fixture
def dagster_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def materialize_all(root: Path):
    defs = build_definitions(root)
    instance = project_instance(root)
    observe_raw_data(defs, instance)
    groups = sorted(defs.resolve_asset_graph().all_group_names)
    keys = selected_keys(defs, groups, [])
    return defs, instance, materialize_selection(defs, instance, keys, BENCHMARKS)


@pytest.mark.slow
def test_whole_graph_materializes_and_is_tracked(tiny_project, dagster_home):
    defs, instance, outcomes = materialize_all(tiny_project)
    assert all(o.success for o in outcomes), outcomes
    assert dagster_home.is_dir()
    paths = ProjectPaths(tiny_project)
    for benchmark in BENCHMARKS:
        metrics = json.loads(paths.metrics(benchmark).read_text())
        assert set(metrics) == METRIC_KEYS
        assert metrics["n"] == 6
        accs = [metrics[f"acc_{t}km"] for t in (1, 25, 200, 750, 2500)]
        assert accs == sorted(accs) and all(0 <= a <= 100 for a in accs)
    assert (paths.reports / "error_curves.png").stat().st_size > 10_000

    client = MlflowClient(paths.tracking_uri)
    experiment = client.get_experiment_by_name("geoloc")
    runs = client.search_runs([experiment.experiment_id], max_results=500)
    children = [r for r in runs if "dagster.asset_key" in r.data.tags]
    by_asset: dict[str, list] = {}
    for run in children:
        by_asset.setdefault(run.data.tags["dagster.asset_key"], []).append(run)
    per_partition = {
        "benchmark_manifest",
        "predictions",
        "metrics",
        "segmentation_cache",
        "backbone_features",
    }
    assert {a: len(r) for a, r in by_asset.items()} == {
        a: (2 if a in per_partition else 1) for a in ASSETS
    }  # two benchmarks, and the tiny project's two segmentation and two feature shards
    for run in by_asset["metrics"]:
        benchmark = run.data.tags["dagster.partition"]
        on_disk = json.loads(paths.metrics(benchmark).read_text())
        assert run.data.metrics["acc_2500km"] == pytest.approx(on_disk["acc_2500km"])
        assert run.data.params["evaluation.distance"] == "geodesic"
    training = by_asset["alignment_model"][0]
    assert len(client.get_metric_history(training.info.run_id, "train_loss")) >= 2
    versions = client.search_model_versions("name = 'geoloc-alignment'")
    assert [v.run_id for v in versions] == [training.info.run_id]

    states = asset_states(defs, instance, BENCHMARKS)
    assert {s.status for s in states} == {"fresh"}, [s for s in states if s.status != "fresh"]


@pytest.mark.slow
def test_changing_evaluation_marks_only_evaluation_stale(tiny_project, dagster_home):
    _, _, outcomes = materialize_all(tiny_project)
    assert all(o.success for o in outcomes)
    params_file = tiny_project / "params.yaml"
    params_file.write_text(
        params_file.read_text().replace("distance: geodesic", "distance: haversine")
    )
    defs = build_definitions(tiny_project)
    instance = project_instance(tiny_project)
    stale = {
        (s.asset, s.partition)
        for s in asset_states(defs, instance, BENCHMARKS)
        if s.status != "fresh"
    }
    assert stale == {("metrics", "demo-street"), ("metrics", "demo-unseen"), ("report", None)}
