"""The gate as a blocking Dagster asset check, with a real instance: a failed check stops the
downstream asset in the same run, and its report is attached to the check and to MLflow."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
from mlflow.tracking import MlflowClient

from geoloc_assets.factory import build_assets
from geoloc_assets.partitions import KNOWN_BENCHMARKS, benchmark_partitions
from geoloc_assets.resources import MlflowTracker, ProjectResource
from tests.test_data_params import layer_params
from tests.test_data_sources import geotagged_jpeg

IM2GPS3K = Path("/work/shared/reference/im2gps3k_places365.csv")


def photo_project(root: Path, with_gps: int, without_gps: int) -> dict:
    photos = root / "data" / "photos"
    for i in range(with_gps):
        geotagged_jpeg(photos / f"ok-{i:02d}.jpg", 40.0 + i / 10, -3.0 - i / 10)
    for i in range(without_gps):
        geotagged_jpeg(photos / f"nogps-{i:02d}.jpg", None, None)
    params = layer_params()
    params["data"].update(source="folder", folder_images="data/photos", validation_fraction=0.2)
    return params


def resources(root: Path) -> dict:
    return {
        "project": ProjectResource(root=str(root)),
        "mlflow_tracker": MlflowTracker(
            tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}",
            artifact_root=str(root / "mlruns" / "artifacts"),
            experiment="geoloc-gate-test",
        ),
    }


DATA_ASSETS = ("raw_data", "reference_manifest", "benchmark_manifest")


def build_data_assets(params: dict, benchmarks: list[str] | None = None) -> list:
    """The data layer's assets alone, partitioned by every known benchmark unless told."""
    names = benchmarks or params.get("benchmarks", {}).get("names", list(KNOWN_BENCHMARKS))
    return build_assets({**params, "benchmarks": {"names": names}}, only=DATA_ASSETS)


def downstream_assets():
    @dg.asset(deps=["reference_manifest"])
    def trained_on_manifest() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"ran": True})

    partitions = benchmark_partitions  # what build_data_assets uses without benchmarks

    @dg.asset(deps=["benchmark_manifest"], partitions_def=partitions)
    def evaluated_on_benchmark() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"ran": True})

    return trained_on_manifest, evaluated_on_benchmark


def temp_instance(root: Path) -> dg.DagsterInstance:
    (root / "dagster").mkdir(exist_ok=True)
    return dg.DagsterInstance.local_temp(str(root / "dagster"))


def run(root: Path, params: dict, instance, targets: list[str], partition: str | None = None):
    everything = [*build_data_assets(params), *downstream_assets()]
    return dg.materialize(
        everything,
        instance=instance,
        resources=resources(root),
        selection=dg.AssetSelection.assets(*targets),
        partition_key=partition,
        raise_on_error=False,
    )


def materialized(result, key: str) -> bool:
    return dg.AssetKey(key) in {e.asset_key for e in result.get_asset_materialization_events()}


@pytest.mark.parametrize(("without_gps", "passes"), [(0, True), (4, False)])
def test_failed_gate_blocks_downstream_in_the_same_run(tmp_path, without_gps, passes):
    params = photo_project(tmp_path, with_gps=16, without_gps=without_gps)
    with temp_instance(tmp_path) as instance:
        result = run(tmp_path, params, instance, ["reference_manifest", "trained_on_manifest"])
    assert materialized(result, "reference_manifest")
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == "reference_manifest_gate"
    assert evaluation.passed is passes
    assert materialized(result, "trained_on_manifest") is passes
    assert result.success is passes
    metadata = evaluation.metadata
    assert metadata["rows_quarantined"].value == without_gps
    if not passes:
        assert "over the limit" in metadata["message"].value
        assert "nogps-00.jpg" in metadata["quarantine"].value
        assert "no GPS position in EXIF" in metadata["quarantine"].value

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("geoloc-gate-test")
    [manifest_run] = [
        r for r in client.search_runs([experiment.experiment_id])
        if r.data.tags.get("dagster.asset_key") == "reference_manifest"
    ]
    logged = {a.path for a in client.list_artifacts(manifest_run.info.run_id, "gate")}
    assert logged == {"gate/quarantine.csv", "gate/reference.json"}


@pytest.mark.skipif(not IM2GPS3K.is_file(), reason="IM2GPS3k CSV not present")
def test_partitioned_gate_blocks_the_benchmark_partition(tmp_path):
    raw = tmp_path / "data" / "raw" / "im2gps3k"
    (raw / "images").mkdir(parents=True)  # no photo at all: every row is quarantined
    shutil.copy(IM2GPS3K, raw / "im2gps3k_places365.csv")
    params = layer_params()
    with temp_instance(tmp_path) as instance:
        result = run(
            tmp_path,
            params,
            instance,
            ["benchmark_manifest", "evaluated_on_benchmark"],
            partition="im2gps3k",
        )
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["rows_quarantined"].value == 2997
    assert materialized(result, "benchmark_manifest")
    assert not materialized(result, "evaluated_on_benchmark")
