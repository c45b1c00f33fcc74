"""MLflow runs carry the settings of their whole lineage, say what they are, and nest under one
parent per pipeline run: a real sqlite store, a real Dagster instance and the project's own
definitions and runner. The metrics asset runs for real on a predictions file written here, so
two model variants cost two metrics materializations, not two trainings."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from geoloc_assets.definitions import build_definitions
from geoloc_assets.lineage import comparison_tags, run_name, without_secrets
from geoloc_assets.resources import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    PARENT_KIND,
    MlflowTracker,
)
from geoloc_assets.run_group import run_group
from geoloc_assets.runner import materialize_selection
from geoloc_core.paths import ProjectPaths

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = ["validation", "demo-street"]
METRICS = dg.AssetKey("metrics")
SECRET = "sk-lineage-test-never-logged"


def _write_predictions(root: Path) -> None:
    """What verification would have written: the metrics step reads nothing else."""
    paths = ProjectPaths(root)
    for benchmark in BENCHMARKS:
        target = paths.predictions(benchmark)
        target.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(
            {
                "id": ["a", "b", "c"],
                "lat": [48.85, 40.71, -33.87],
                "lon": [2.35, -74.0, 151.2],
                "pred_lat": [48.9, 41.0, -30.0],
                "pred_lon": [2.3, -74.1, 150.0],
            }
        ).to_csv(target, index=False)


def _configure(root: Path, variant: str) -> None:
    """The variant under test; the settings the run names spell out, pinned here."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["model"]["variant"] = variant
    params["rerank"].update(method="dbscan", eps_km=50.0)
    params["verification"]["method"] = "verify"
    params["lmm"]["provider"] = "none"
    params["embeddings"]["parts"] = "auto"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def store(tiny_world_template: Path, tmp_path_factory) -> MlflowClient:
    """metrics[validation, demo-street] for g3 in DVC experiment 'exp-g3', then for dualgeo in
    'exp-dualgeo': each is two Dagster runs, as `geoloc materialize` makes them."""
    root = tmp_path_factory.mktemp("lineage") / "project"
    shutil.copytree(tiny_world_template, root)
    _write_predictions(root)
    uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as env, dg.DagsterInstance.local_temp(str(root)) as inst:
        env.setenv("MLFLOW_TRACKING_URI", uri)
        env.setenv("GEOLOC_LMM_API_KEY", SECRET)
        env.setenv("DVC_EXP_BASELINE_REV", "0123456789abcdef0123456789abcdef01234567")
        for variant in ("g3", "dualgeo"):
            _configure(root, variant)
            env.setenv("DVC_EXP_NAME", f"exp-{variant}")
            outcomes = materialize_selection(build_definitions(root), inst, [METRICS], BENCHMARKS)
            assert [o.success for o in outcomes] == [True, True]
    return MlflowClient(uri)


def _experiment_id(client: MlflowClient) -> str:
    return client.get_experiment_by_name("geoloc").experiment_id


def _metrics_runs(client: MlflowClient, filter_string: str = "") -> list:
    where = "tags.`dagster.asset_key` = 'metrics'"
    return client.search_runs(
        [_experiment_id(client)], f"{where} and {filter_string}" if filter_string else where
    )


def test_params_search_finds_exactly_the_variants_metrics_runs(store):
    runs = _metrics_runs(store, "params.`model.variant` = 'dualgeo'")
    assert len(runs) == 2
    assert {r.data.tags["geoloc.benchmark"] for r in runs} == set(BENCHMARKS)
    assert {r.data.tags["geoloc.variant"] for r in runs} == {"dualgeo"}
    assert len(_metrics_runs(store)) == 4


def test_metrics_run_carries_upstream_sections_and_code_versions(store):
    (run,) = _metrics_runs(
        store, "params.`model.variant` = 'g3' and tags.`geoloc.benchmark` = 'validation'"
    )
    params = run.data.params
    assert len(params) > 100  # more than one log_batch holds
    assert params["rerank.eps_km"] == "50.0"
    assert params["train.epochs"] == "2"  # the tiny project's, not the repository's
    assert {"train.lr_g3", "verification.method", "lmm.model", "embeddings.parts"} <= set(params)
    assert {"segmentation.provider", "index.type", "evaluation.distance"} <= set(params)
    for asset in ("alignment_model", "rerank", "verification", "reference_manifest", "metrics"):
        assert re.fullmatch(r"[0-9a-f]{10}-[0-9a-f]{12}", params[f"code_version.{asset}"])
    assert params["lmm.api_key_env"] == "GEOLOC_LMM_API_KEY"  # the name, never the key
    assert all(SECRET not in v for v in [*params.values(), *run.data.tags.values()])
    assert params["lmm.prompt_rag"].startswith("sha256:")  # long texts as a digest


def test_runs_are_tagged_and_named_for_comparison(store):
    (run,) = _metrics_runs(
        store, "params.`model.variant` = 'dualgeo' and tags.`geoloc.benchmark` = 'validation'"
    )
    tags = run.data.tags
    assert tags["geoloc.rerank"] == "dbscan-50km"
    assert tags["geoloc.lmm"] == "none"
    assert tags["mlflow.runName"] == "validation dualgeo dbscan-50km verify · metrics"
    assert run.data.metrics["n"] == 3.0


def test_one_parent_per_dvc_experiment(store):
    parents = store.search_runs([_experiment_id(store)], f"tags.`geoloc.kind` = '{PARENT_KIND}'")
    assert sorted(p.info.run_name for p in parents) == ["dvc exp exp-dualgeo", "dvc exp exp-g3"]
    for parent in parents:
        children = store.search_runs(
            [_experiment_id(store)], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
        )
        variant = parent.data.tags["dvc.exp_name"].removeprefix("exp-")
        assert len({c.data.tags["dagster.run_id"] for c in children}) == 2  # two Dagster runs
        assert {c.data.params["model.variant"] for c in children} == {variant}
        assert parent.data.tags["geoloc.variant"] == variant  # what its steps share
        assert "geoloc.benchmark" not in parent.data.tags
        assert parent.info.status == "FINISHED"


def test_experiment_opens_on_the_training_runs(store, tmp_path):
    experiment = store.get_experiment_by_name("geoloc")
    assert experiment.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    # an experiment made before (by hand, or by an older version) gets the tag too
    store.create_experiment("made-before", artifact_location=(tmp_path / "old").as_uri())
    tracker = MlflowTracker(
        tracking_uri=store.tracking_uri,
        artifact_root=str(tmp_path / "artifacts"),
        experiment="made-before",
    )
    tracker.experiment_id(store)
    tags = store.get_experiment_by_name("made-before").tags
    assert tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND


def test_group_falls_back_to_backfill_then_dagster_run():
    env: dict[str, str] = {}
    backfill = run_group("f" * 36, {"dagster/backfill": "qwerty12"}, env)
    assert (backfill.key, backfill.name) == ("backfill:qwerty12", "backfill qwerty12")
    alone = run_group("0123456789abcdef", {}, env)
    assert (alone.kind, alone.name) == ("dagster-run", "dagster run 01234567")
    exp = run_group("f" * 36, {"dagster/backfill": "qwerty12"}, {"DVC_EXP_NAME": "e1"})
    assert exp.name == "dvc exp e1"  # the experiment wins over the backfill


STAGE = """
import json, sys
from geoloc_assets.run_group import run_group
group = run_group(sys.argv[1], {})
print(json.dumps([group.key, group.kind, group.name]))
"""

FAKE_DVC = """
import subprocess, sys
stage = sys.argv[1]
for run_id in ("run-one", "run-two"):  # two stages, each its own process under a shell
    subprocess.run(["/bin/sh", "-c", f"{sys.executable} {stage} {run_id}"], check=True)
"""


def _fake_repro(tmp_path: Path) -> list[tuple[str, str, str]]:
    """A real process tree: a program called dvc runs two stage commands through a shell."""
    (tmp_path / "stage.py").write_text(STAGE)
    fake_dvc = tmp_path / "bin" / "dvc"
    fake_dvc.parent.mkdir(exist_ok=True)
    fake_dvc.write_text(FAKE_DVC)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVC_")}
    env |= {"DVC_ROOT": str(tmp_path), "DVC_STAGE": "evaluation", "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, str(fake_dvc), str(tmp_path / "stage.py")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    return [tuple(json.loads(line)) for line in out.stdout.splitlines()]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_stages_of_one_dvc_repro_share_a_parent(tmp_path):
    first = _fake_repro(tmp_path)
    assert len(first) == 2 and first[0] == first[1]
    key, kind, name = first[0]
    assert kind == "dvc-repro" and key.startswith("dvc-repro:") and name.startswith("dvc repro ")
    assert _fake_repro(tmp_path)[0][0] != key  # the next repro is another process


def test_secrets_and_secret_names_never_become_params(monkeypatch):
    monkeypatch.setenv("MY_KEY", SECRET)
    flat = {
        "lmm.api_key_env": "MY_KEY",
        "lmm.api_key": "anything",
        "x.token": "t",
        "x.note": f"prefix {SECRET}",
        "lmm.max_tokens": "200",
    }
    assert without_secrets(flat) == {"lmm.api_key_env": "MY_KEY", "lmm.max_tokens": "200"}


def test_run_names_and_tags_stay_short():
    tags = {"geoloc.variant": "g3", "geoloc.lmm": "transformers/g3/Qwen/Qwen2.5-VL-7B-Instruct"}
    assert run_name("alignment_model", "", {"geoloc.variant": "g3"}) == "g3 · alignment_model"
    on_validation = {**tags, "geoloc.benchmark": "validation"}
    assert run_name("lmm_diversification", "validation", on_validation) == (
        "validation g3 lmm:transformers/g3/Qwen2.5-VL-7B-Instruct · lmm_diversification"
    )
    # G3's ablation rows share the variant: the embedding parts tell them apart
    flat = {"model.variant": "g3", "embeddings.parts": "['frozen', 'image_gps']"}
    ablation = comparison_tags(flat, "", None)
    assert ablation == {"geoloc.variant": "g3", "geoloc.embeddings": "frozen+image_gps"}
    assert run_name("reference_embeddings", "000", ablation) == (
        "g3(frozen+image_gps) · reference_embeddings[000]"
    )
