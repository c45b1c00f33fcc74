"""The MLflow resource against a real sqlite store and a real Dagster instance."""

import dagster as dg
import pytest
from mlflow.tracking import MlflowClient

from geoloc_assets.lineage import flatten_params
from geoloc_assets.resources import PARENT_KIND, MlflowTracker


@pytest.fixture
def tracker(tmp_path) -> MlflowTracker:
    return MlflowTracker(
        tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}",
        artifact_root=str(tmp_path / "mlruns" / "artifacts"),
        experiment="geoloc-test",
        ui_url="http://127.0.0.1:5999",
    )


def _assets(fail: bool = False):
    @dg.asset(code_version="v7")
    def first(context: dg.AssetExecutionContext, mlflow_tracker: MlflowTracker):
        with mlflow_tracker.asset_run(context, {"section": {"k": 1, "names": ["a", "b"]}}) as run:
            run.log_metrics({"acc_25km": 12.5, "n": 3, "skipped": "text"})
        return dg.MaterializeResult(metadata={"mlflow_run": dg.MetadataValue.url(run.url)})

    @dg.asset(deps=[first], partitions_def=dg.StaticPartitionsDefinition(["p1", "p2"]))
    def second(context: dg.AssetExecutionContext, mlflow_tracker: MlflowTracker):
        with mlflow_tracker.asset_run(context, {"x": 1}, {"benchmark": context.partition_key}):
            if fail:
                raise RuntimeError("boom")

    return first, second


def test_one_nested_run_per_materialization(tmp_path, tracker):
    first, second = _assets()
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        result = dg.materialize(
            [first, second],
            instance=instance,
            resources={"mlflow_tracker": tracker},
            selection=[first.key],
        )
        assert result.success
        client = MlflowClient(tracker.tracking_uri)
        experiment = client.get_experiment_by_name("geoloc-test")
        runs = client.search_runs([experiment.experiment_id])
        parents = [r for r in runs if r.data.tags.get("geoloc.kind") == PARENT_KIND]
        children = [r for r in runs if "dagster.asset_key" in r.data.tags]
        assert len(parents) == 1 and len(children) == 1
        child = children[0]
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert child.data.tags["dagster.run_id"] == result.run_id
        assert child.data.tags["dagster.asset_key"] == "first"
        assert child.data.tags["dagster.code_version"] == "v7"
        assert child.data.params == {
            "section.k": "1",
            "section.names": "['a', 'b']",
            "code_version.first": "v7",
        }
        assert child.data.metrics == {"acc_25km": 12.5, "n": 3.0}
        assert child.info.status == "FINISHED"
        event = instance.get_latest_materialization_event(first.key)
        url = event.asset_materialization.metadata["mlflow_run"].value
        assert url.endswith(f"/runs/{child.info.run_id}?workflowType=machine_learning")
        assert url.startswith("http://127.0.0.1:5999/#/experiments/")
        assert experiment.artifact_location.startswith((tmp_path / "mlruns").as_uri())


def test_partitions_get_their_own_runs_and_failures_are_marked(tmp_path, tracker):
    first, _ = _assets()
    _, failing = _assets(fail=True)
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        for partition in ("p1", "p2"):
            result = dg.materialize(
                [first, failing],
                instance=instance,
                partition_key=partition,
                resources={"mlflow_tracker": tracker},
                selection=[failing.key],
                raise_on_error=False,
            )
            assert not result.success
        client = MlflowClient(tracker.tracking_uri)
        experiment = client.get_experiment_by_name("geoloc-test")
        children = client.search_runs(
            [experiment.experiment_id], "tags.`dagster.asset_key` = 'second'"
        )
        assert sorted(r.data.tags["dagster.partition"] for r in children) == ["p1", "p2"]
        assert {r.data.tags["benchmark"] for r in children} == {"p1", "p2"}
        assert {r.info.status for r in children} == {"FAILED"}
        parents = client.search_runs(
            [experiment.experiment_id], f"tags.`geoloc.kind` = '{PARENT_KIND}'"
        )
        assert len(parents) == 2


def test_flatten_params_truncates_and_nests():
    flat = flatten_params({"a": {"b": {"c": 1}}, "long": "x" * 10000})
    assert flat["a.b.c"] == "1"
    assert len(flat["long"]) == 6000


def test_a_failed_materialization_leaves_its_parent_failed(tmp_path, tracker):
    # two independent assets in one Dagster run: the first fails, the second then succeeds
    @dg.asset
    def a_fails(context: dg.AssetExecutionContext, mlflow_tracker: MlflowTracker):
        with mlflow_tracker.asset_run(context, {}):
            raise RuntimeError("boom")

    @dg.asset
    def b_succeeds(context: dg.AssetExecutionContext, mlflow_tracker: MlflowTracker):
        with mlflow_tracker.asset_run(context, {}):
            pass

    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        result = dg.materialize(
            [a_fails, b_succeeds],
            instance=instance,
            resources={"mlflow_tracker": tracker},
            raise_on_error=False,
        )
    assert not result.success
    client = MlflowClient(tracker.tracking_uri)
    experiment = client.get_experiment_by_name("geoloc-test")
    runs = client.search_runs([experiment.experiment_id])
    children = {
        r.data.tags["dagster.asset_key"]: r for r in runs if "dagster.asset_key" in r.data.tags
    }
    (parent,) = [r for r in runs if r.data.tags.get("geoloc.kind") == PARENT_KIND]
    assert children["a_fails"].info.status == "FAILED"
    assert children["b_succeeds"].info.status == "FINISHED"
    # the success came last, so it is the one that must not overwrite the failure
    assert children["a_fails"].info.end_time <= children["b_succeeds"].info.end_time
    assert parent.info.status == "FAILED"


def test_one_failed_stage_leaves_the_pipeline_parent_failed(tmp_path, tracker, monkeypatch):
    # two Dagster runs of one DVC experiment (as two stage processes make them): the first
    # fails, the second succeeds; they share a parent, and it stays failed
    monkeypatch.setenv("DVC_EXP_NAME", "exp-fails")
    for name in ("DVC_ROOT", "DVC_STAGE"):
        monkeypatch.delenv(name, raising=False)
    first, failing = _assets(fail=True)
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        failed = dg.materialize(
            [first, failing],
            instance=instance,
            partition_key="p1",
            resources={"mlflow_tracker": tracker},
            selection=[failing.key],
            raise_on_error=False,
        )
        passed = dg.materialize(
            [first, failing],
            instance=instance,
            resources={"mlflow_tracker": tracker},
            selection=[first.key],
        )
    assert not failed.success and passed.success
    client = MlflowClient(tracker.tracking_uri)
    experiment = client.get_experiment_by_name("geoloc-test")
    (parent,) = client.search_runs(
        [experiment.experiment_id], f"tags.`geoloc.kind` = '{PARENT_KIND}'"
    )
    assert parent.info.run_name == "dvc exp exp-fails"
    children = client.search_runs(
        [experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert {c.data.tags["dagster.asset_key"]: c.info.status for c in children} == {
        "second": "FAILED",
        "first": "FINISHED",
    }
    assert parent.info.status == "FAILED"
