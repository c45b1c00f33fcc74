"""`geoloc`'s exit codes on a tiny project: 2 for a bad command line (before anything runs), 0 when
every run succeeds, 1 when one fails, and then nothing after the failed run is started;
`--stale` runs only what a params change made stale."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from dagster import DagsterEventType

from geoloc_assets.cli import main
from geoloc_assets.runner import project_instance
from geoloc_core.paths import ProjectPaths
from tests.test_evaluate_step import write_predictions

PLANNED = DagsterEventType.ASSET_MATERIALIZATION_PLANNED


@pytest.fixture
def bare(tiny_project: Path, monkeypatch) -> Path:
    """The tiny project with nothing materialized."""
    monkeypatch.setenv("DAGSTER_HOME", str(tiny_project / ".dagster"))
    return tiny_project


@pytest.fixture(scope="module")
def manifest_template(tiny_world_template: Path, tmp_path_factory) -> Path:
    """The tiny project after `geoloc materialize --asset reference_manifest` (exit 0), made
    once: the Dagster instance and the MLflow store are set up by that first run."""
    root = tmp_path_factory.mktemp("cli") / "project"
    shutil.copytree(tiny_world_template, root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(root / ".dagster"))
        assert geoloc(root, "materialize", "--asset", "reference_manifest") == 0
        assert runs_of(root) == [("reference_manifest", None, True)]
    return root


@pytest.fixture
def project(manifest_template: Path, tmp_path: Path, monkeypatch) -> Path:
    """A copy of manifest_template (instance and MLflow store included) per test."""
    root = tmp_path / "project"
    shutil.copytree(manifest_template, root)
    monkeypatch.setenv("DAGSTER_HOME", str(root / ".dagster"))
    return root


def geoloc(root: Path, *args: str) -> int:
    return main(["--root", str(root), *args])


def runs_of(root: Path) -> list[tuple[str, str | None, bool]]:
    """(assets it was to materialize, partition, success) of every Dagster run, oldest first;
    the raw-data observation runs plan no materialization and are left out."""
    instance = project_instance(root)
    found = []
    for record in reversed(instance.get_run_records()):
        run = record.dagster_run
        planned = instance.all_logs(run.run_id, of_type=PLANNED)
        if planned and run.job_name != "observe_raw_data":
            assets = ",".join(sorted({e.dagster_event.asset_key.to_user_string() for e in planned}))
            found.append((assets, run.tags.get("dagster/partition"), run.is_success))
    return found


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["materialize", "--benchmark", "im2gps"], "--benchmark ['im2gps']: not in params"),
        (["materialize", "--asset", "no_such_asset"], "unknown assets ['no_such_asset']"),
        (["materialize", "--group", "no_such_group"], "unknown asset group 'no_such_group'"),
        (["predict", "photo.jpg"], "no trained model in"),
    ],
)
def test_a_bad_command_line_exits_2_and_runs_nothing(bare, capsys, args, message) -> None:
    assert geoloc(bare, *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("geoloc: error: ") and message in err[0]
    assert runs_of(bare) == []


def test_failed_run_exits_1_and_nothing_after_it_runs(project, capsys) -> None:
    """metrics[demo-street] succeeds, metrics[demo-unseen] has no predictions and fails: the
    validation partition and report (a later batch) are never started."""
    write_predictions(project)  # demo-street's predictions only
    order = [f"--benchmark={name}" for name in ("demo-street", "demo-unseen", "validation")]
    assert geoloc(project, "materialize", "--asset", "metrics", "--asset", "report", *order) == 1
    printed = [line.split("  (dagster run")[0] for line in capsys.readouterr().out.splitlines()]
    assert [line for line in printed if line.startswith(("ok", "FAILED"))] == [
        "ok     metrics[demo-street]",
        "FAILED metrics[demo-unseen]",
    ]
    ran = runs_of(project)[1:]  # after the template's reference_manifest run
    assert ran == [("metrics", "demo-street", True), ("metrics", "demo-unseen", False)]
    paths = ProjectPaths(project)
    assert paths.metrics("demo-street").is_file()
    assert not paths.metrics("validation").exists() and not (paths.reports / "report.md").exists()


def test_stale_runs_only_what_a_change_made_stale(project, capsys) -> None:
    assert geoloc(project, "materialize", "--stale", "--asset", "reference_manifest") == 0
    assert "nothing to materialize: everything selected is fresh" in capsys.readouterr().out
    assert len(runs_of(project)) == 1

    params_file = project / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["manifest"]["min_image_side"] += 1  # a setting reference_manifest reads
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    assert geoloc(project, "materialize", "--stale", "--asset", "reference_manifest") == 0
    assert "ok     reference_manifest" in capsys.readouterr().out
    assert runs_of(project) == [("reference_manifest", None, True)] * 2
