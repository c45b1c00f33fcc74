"""Two `geoloc materialize` processes racing on one project — the same Dagster instance and the
same MLflow sqlite store, both created by the race itself — both finish and are both recorded.
Without the serialized first opening of the store, one of them failed while migrating the new
database ("duplicate column name")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
from mlflow.tracking import MlflowClient

from geoloc_assets.runner import project_instance

RACERS = 2
MANIFEST = dg.AssetKey("reference_manifest")


def racing_materializations(root: Path, asset: str) -> list[subprocess.CompletedProcess]:
    env = {**os.environ, "DAGSTER_HOME": str(root / ".dagster"), "GEOLOC_ROOT": str(root)}
    command = [sys.executable, "-m", "geoloc_assets.cli", "--root", str(root)]
    processes = [
        subprocess.Popen(
            [*command, "materialize", "--asset", asset],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(RACERS)
    ]
    done = []
    for process in processes:
        output, _ = process.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, output))
    return done


def test_two_materializations_on_a_fresh_instance_and_store_both_finish(
    tiny_project, monkeypatch
):
    monkeypatch.setenv("DAGSTER_HOME", str(tiny_project / ".dagster"))  # make test sets its own
    results = racing_materializations(tiny_project, "reference_manifest")
    for result in results:
        assert result.returncode == 0, result.stdout[-3000:]
        assert "database is locked" not in result.stdout
    instance = project_instance(tiny_project)
    events = instance.fetch_materializations(MANIFEST, limit=10).records
    assert len(events) == RACERS
    client = MlflowClient(f"sqlite:///{tiny_project / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("geoloc")
    tracked = client.search_runs(
        [experiment.experiment_id], "tags.`dagster.asset_key` = 'reference_manifest'"
    )
    assert sorted(r.info.status for r in tracked) == ["FINISHED"] * RACERS
    run_ids = {r.data.tags["dagster.run_id"] for r in tracked}
    assert len(run_ids) == RACERS and run_ids == {e.run_id for e in events}
    for run_id in run_ids:
        assert instance.get_run_by_id(run_id).is_success
