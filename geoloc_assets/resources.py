"""Resources: where the project lives, and MLflow tracking called directly (no dagster-mlflow).

One MLflow run per asset materialization (per partition), carrying the settings of everything
upstream of it (geoloc_assets.lineage), nested under one parent run per pipeline run: a DVC
experiment, a `dvc repro`, a Dagster backfill or a lone Dagster run (geoloc_assets.run_group).
"""

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from filelock import FileLock
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from geoloc_assets.lineage import (
    batches,
    comparison_tags,
    full_asset_graph,
    lineage_params,
    run_name,
)
from geoloc_assets.recorded import RecordedSettings
from geoloc_assets.run_group import RunGroup, run_group
from geoloc_core.paths import ProjectPaths

PARENT_KIND = "pipeline-run"
MAX_PARAMS_PER_BATCH = 100
# labels that differ between the steps of one pipeline run stay off its parent
PER_STEP_LABELS = ("geoloc.benchmark",)
# MLflow 3 opens an experiment on the GenAI overview unless this tag says it holds model
# training (the UI's "Machine learning" kind); newer UIs pick the view from the workflowType
# query parameter, so the run links carry that too.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
UI_QUERY = "?workflowType=machine_learning"


class ProjectResource(dg.ConfigurableResource):
    """The project root every asset reads from and writes under."""

    root: str

    @property
    def paths(self) -> ProjectPaths:
        return ProjectPaths(Path(self.root))


@dataclass
class TrackedRun:
    client: MlflowClient
    run_id: str
    url: str

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        batch = [
            Metric(name, float(value), _now_ms(), step)
            for name, value in metrics.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        ]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def log_metric(self, name: str, value: float, step: int = 0) -> None:
        self.client.log_metric(self.run_id, name, float(value), step=step)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


class MlflowTracker(dg.ConfigurableResource):
    tracking_uri: str
    artifact_root: str
    experiment: str = "geoloc"
    ui_url: str = "http://127.0.0.1:5000"

    def client(self) -> MlflowClient:
        # A client of its own, never mlflow.set_tracking_uri: that sets MLFLOW_TRACKING_URI for
        # the whole process, and the next project built in it would log into this store.
        # Opening a new sqlite store creates and migrates its tables; two processes doing that
        # at once fail ("duplicate column name"), so the first opening is serialized.
        with self._lock():
            client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
            client.search_experiments(max_results=1)  # the store is opened (and migrated) here
        return client

    def experiment_id(self, client: MlflowClient) -> str:
        """The experiment, created if missing, marked as model training either way."""
        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            if found.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
                client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
            return found.experiment_id
        location = None  # a tracking server puts artifacts in its own store (deploy/mlflow)
        if not self.tracking_uri.startswith(("http://", "https://")):
            Path(self.artifact_root).mkdir(parents=True, exist_ok=True)
            location = Path(self.artifact_root).resolve().as_uri()
        return client.create_experiment(
            self.experiment,
            artifact_location=location,
            tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
        )

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_url}/#/experiments/{experiment_id}/runs/{run_id}{UI_QUERY}"

    @contextmanager
    def asset_run(
        self,
        context: dg.AssetExecutionContext,
        params: Mapping[str, Any],
        tags: Mapping[str, str] | None = None,
        upstream: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Iterator[TrackedRun]:
        """An MLflow run for this materialization, finished or failed with it; upstream: the
        settings each upstream asset ran with (asset name -> sections), read from their
        recorded materializations when not given."""
        client = self.client()
        group = run_group(context.run_id, context.run.tags)
        asset_key = context.asset_key.to_user_string()
        partition = context.partition_key if context.has_partition_key else ""
        if upstream is None:
            recorded = RecordedSettings(context.instance, full_asset_graph(context))
            upstream = recorded.upstream(context.asset_key, partition or None)
        flat = lineage_params(context, params, upstream)
        labels = comparison_tags(flat, partition, context.assets_def.partitions_def)
        code_version = context.assets_def.code_versions_by_key.get(context.asset_key) or ""
        run_tags = {
            "dagster.run_id": context.run_id,
            "dagster.asset_key": asset_key,
            "dagster.partition": partition,
            "dagster.code_version": code_version,
            "geoloc.group": group.key,
            **labels,
            **(tags or {}),
        }
        # the child starts under the lock: a step finishing meanwhile must see it running
        with self._lock():
            experiment_id = self.experiment_id(client)
            parent_id = self._parent_run(client, experiment_id, group, labels)
            run_tags["mlflow.parentRunId"] = parent_id
            name = run_name(asset_key, partition, labels)
            run_id = client.create_run(experiment_id, run_name=name, tags=run_tags).info.run_id
        tracked = TrackedRun(client, run_id, self.run_url(experiment_id, run_id))
        try:
            for batch in batches(flat.items(), MAX_PARAMS_PER_BATCH):
                client.log_batch(run_id, params=[Param(k, v) for k, v in batch])
            yield tracked
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            with self._lock():
                client.set_terminated(parent_id, "FAILED")
            raise
        client.set_terminated(run_id, "FINISHED")
        with self._lock():
            self._finish_parent(client, experiment_id, parent_id)

    def _lock(self) -> FileLock:
        """Serializes parent-run lookups and status changes between concurrent steps and the
        stage processes of one pipeline run."""
        lock_dir = Path(self.artifact_root).parent
        lock_dir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(lock_dir / ".geoloc-mlflow.lock"))

    def _parent_run(
        self,
        client: MlflowClient,
        experiment_id: str,
        group: RunGroup,
        labels: Mapping[str, str],
    ) -> str:
        """The group's parent run, created on first use; running again while a step runs, and
        labelled with the settings its steps have in common (variant, re-rank, LMM)."""
        shared = {k: v for k, v in labels.items() if k not in PER_STEP_LABELS}
        found = client.search_runs(
            [experiment_id],
            filter_string=(
                f"tags.`geoloc.kind` = '{PARENT_KIND}' "
                f"and tags.`geoloc.group` = '{_quoted(group.key)}'"
            ),
            max_results=1,
        )
        if found:
            parent = found[0]
            missing = [RunTag(k, v) for k, v in shared.items() if k not in parent.data.tags]
            if missing:
                client.log_batch(parent.info.run_id, tags=missing)
            # one failed materialization fails the whole pipeline run, for good
            if parent.info.status not in ("FAILED", "RUNNING"):
                client.update_run(parent.info.run_id, status="RUNNING")
            return parent.info.run_id
        tags = {
            "geoloc.kind": PARENT_KIND,
            "geoloc.group": group.key,
            "geoloc.group_kind": group.kind,
            **group.tags,
            **shared,
        }
        return client.create_run(experiment_id, run_name=group.name, tags=tags).info.run_id

    def _finish_parent(self, client: MlflowClient, experiment_id: str, parent_id: str) -> None:
        """FINISHED once no step of the group runs any more; a FAILED parent stays FAILED (a
        later success in the same pipeline run must not turn it back)."""
        if client.get_run(parent_id).info.status == "FAILED":
            return
        running = client.search_runs(
            [experiment_id],
            filter_string=(
                f"tags.`mlflow.parentRunId` = '{parent_id}' and attributes.status = 'RUNNING'"
            ),
            max_results=1,
        )
        if not running:
            client.set_terminated(parent_id, "FINISHED")


def _quoted(value: str) -> str:
    """A value inside a single-quoted MLflow filter string."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _now_ms() -> int:
    return int(time.time() * 1000)
