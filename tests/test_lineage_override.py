"""Lineage is what actually ran: a launchpad override of the re-rank (params.yaml keeps the
retrieval order; the override asks for DBSCAN at 20 km) on one partition, then
what follows it materialized in a separate run without any run config (as the daemon does it).
The downstream MLflow runs, the report's rows, the materializations' metadata and
`geoloc status` must all name the override, not params.yaml's value."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
from mlflow.tracking import MlflowClient

from geoloc_assets.cli import main
from geoloc_assets.definitions import build_definitions
from geoloc_assets.recorded import DIFFERS, SETTINGS
from geoloc_assets.runner import materialize_selection, project_instance
from geoloc_core.paths import ProjectPaths
from tests.conftest import launchpad_run

OVERRIDE_KM = 20.0  # params.yaml says 50
OVERRIDE = {"rerank": {"method": "dbscan", "eps_km": OVERRIDE_KM}}  # params.yaml says none
# confidence_calibration: the radii are calibrated on validation's decisions
BELOW_RERANK = ("lmm_reasoning", "confidence_calibration", "verification", "metrics", "report")


@pytest.fixture(scope="module")
def overridden(materialized_template: Path, tmp_path_factory) -> Path:
    """The materialized tiny project; then rerank[validation] with DBSCAN at 20 km from the run
    config; then what follows it for validation, and the report, in another run with no run
    config."""
    root = tmp_path_factory.mktemp("lineage-override") / "project"
    shutil.copytree(materialized_template, root)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(root / ".dagster"))
        launchpad = launchpad_run(root, "rerank", "validation", OVERRIDE)
        assert launchpad.success
        defs = build_definitions(root)
        instance = project_instance(root)
        keys = [dg.AssetKey(name) for name in BELOW_RERANK]
        outcomes = materialize_selection(defs, instance, keys, ["validation"])
        assert all(o.success for o in outcomes), outcomes
    return root


def _latest_run(root: Path, asset: str, partition: str):
    client = MlflowClient(ProjectPaths(root).tracking_uri)
    experiment = client.get_experiment_by_name("geoloc").experiment_id
    runs = client.search_runs(
        [experiment],
        f"tags.`dagster.asset_key` = '{asset}' and tags.`dagster.partition` = '{partition}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0]


def _metadata(root: Path, asset: str, partition: str | None) -> dict:
    instance = dg.DagsterInstance.from_config(str(root / ".dagster"))
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None
        ),
        limit=1,
    ).records
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def test_downstream_mlflow_runs_name_the_override(overridden):
    for asset in ("lmm_reasoning", "verification", "metrics"):
        run = _latest_run(overridden, asset, "validation")
        assert run.data.params["rerank.eps_km"] == str(OVERRIDE_KM), asset
        assert run.data.tags["geoloc.rerank"] == "dbscan-20km", asset
    metrics = _latest_run(overridden, "metrics", "validation")
    assert metrics.info.run_name == "validation g3 dbscan-20km verify · metrics"
    # the partition that was not overridden keeps params.yaml's value
    street = _latest_run(overridden, "metrics", "demo-street")
    assert street.data.params["rerank.eps_km"] == "50.0"


def test_report_rows_name_what_each_benchmark_ran_with(overridden):
    report = (ProjectPaths(overridden).reports / "report.md").read_text()
    rows = {  # the re-ranked rows and the decision's (the retrieval top-1 row shows a dash)
        benchmark: [
            line
            for line in report.splitlines()
            if f"metrics/{benchmark}.json" in line and "retrieval top-1" not in line
        ]
        for benchmark in ("validation", "demo-street")
    }
    assert len(rows["validation"]) == 2  # + re-rank, and the decision
    assert all("| dbscan eps 20 km, min 2 |" in r for r in rows["validation"])
    assert len(rows["demo-street"]) == 2
    assert all("| none |" in r and "dbscan" not in r for r in rows["demo-street"])
    assert "re-rank dbscan eps 20 km, min 2 (validation); none (demo-street, demo-unseen)" in report


def test_metadata_records_the_settings_and_says_they_differ(overridden):
    rerank = _metadata(overridden, "rerank", "validation")
    assert rerank[SETTINGS]["rerank"]["eps_km"] == OVERRIDE_KM
    assert rerank[SETTINGS]["rerank"]["method"] == "dbscan"
    assert rerank[DIFFERS] == "rerank.eps_km 20 ≠ 50, rerank.method dbscan ≠ none"
    metrics = _metadata(overridden, "metrics", "validation")
    assert metrics[DIFFERS] == "upstream rerank ran with rerank.eps_km 20, rerank.method dbscan"
    assert DIFFERS not in _metadata(overridden, "rerank", "demo-street")
    assert "upstream rerank" in _metadata(overridden, "report", None)[DIFFERS]


def test_status_says_what_differs_from_params_yaml(overridden, capsys, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(overridden / ".dagster"))
    assert main(["--root", str(overridden), "status"]) == 0
    lines = {line.split()[1]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["rerank[validation]"].startswith("fresh")
    assert lines["rerank[validation]"].endswith(
        "(differs from params.yaml: rerank.eps_km 20 ≠ 50, rerank.method dbscan ≠ none)"
    )
    for name in ("lmm_reasoning[validation]", "verification[validation]", "metrics[validation]"):
        assert lines[name].startswith("fresh"), lines[name]
        assert lines[name].endswith(
            "(upstream rerank ran with rerank.eps_km 20, rerank.method dbscan)"
        ), lines[name]
    assert "differs" not in lines["rerank[demo-street]"]
    assert "ran with" not in lines["metrics[demo-street]"]
