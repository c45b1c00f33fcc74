"""Resources: where the project lives, and MLflow tracking called directly (no dagster-mlflow).

One MLflow run per asset materialization (per partition), nested under one parent run per
Dagster run, tagged so a run can be found from either side.
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from filelock import FileLock
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from geoloc_core.paths import ProjectPaths

PARENT_KIND = "dagster-run"
MAX_PARAM_LENGTH = 6000


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
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def experiment_id(self, client: MlflowClient) -> str:
        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        Path(self.artifact_root).mkdir(parents=True, exist_ok=True)
        return client.create_experiment(
            self.experiment, artifact_location=Path(self.artifact_root).resolve().as_uri()
        )

    @contextmanager
    def asset_run(
        self,
        context: dg.AssetExecutionContext,
        params: Mapping[str, Any],
        tags: Mapping[str, str] | None = None,
    ) -> Iterator[TrackedRun]:
        """An MLflow run for this materialization, finished or failed with it."""
        client = self.client()
        with self._lock():
            experiment_id = self.experiment_id(client)
            parent_id = self._parent_run(client, experiment_id, context.run_id)
        asset_key = context.asset_key.to_user_string()
        partition = context.partition_key if context.has_partition_key else ""
        code_version = context.assets_def.code_versions_by_key.get(context.asset_key) or ""
        run_tags = {
            "mlflow.parentRunId": parent_id,
            "dagster.run_id": context.run_id,
            "dagster.asset_key": asset_key,
            "dagster.partition": partition,
            "dagster.code_version": code_version,
            **(tags or {}),
        }
        name = f"{asset_key}[{partition}]" if partition else asset_key
        run = client.create_run(experiment_id, run_name=name, tags=run_tags)
        run_id = run.info.run_id
        url = f"{self.ui_url}/#/experiments/{experiment_id}/runs/{run_id}"
        flat = flatten_params(params)
        client.log_batch(run_id, params=[Param(k, v) for k, v in flat.items()])
        tracked = TrackedRun(client, run_id, url)
        try:
            yield tracked
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            with self._lock():
                client.set_terminated(parent_id, "FAILED")
            raise
        client.set_terminated(run_id, "FINISHED")
        with self._lock():
            # one failed materialization fails the whole Dagster run: a later success in the
            # same run must not turn its parent back to FINISHED
            if client.get_run(parent_id).info.status != "FAILED":
                client.set_terminated(parent_id, "FINISHED")

    def _lock(self) -> FileLock:
        """Serializes parent-run lookups and status changes between concurrent steps."""
        lock_dir = Path(self.artifact_root).parent
        lock_dir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(lock_dir / ".geoloc-mlflow.lock"))

    def _parent_run(self, client: MlflowClient, experiment_id: str, dagster_run_id: str) -> str:
        found = client.search_runs(
            [experiment_id],
            filter_string=(
                f"tags.`geoloc.kind` = '{PARENT_KIND}' "
                f"and tags.`dagster.run_id` = '{dagster_run_id}'"
            ),
            max_results=1,
        )
        if found:
            return found[0].info.run_id
        run = client.create_run(
            experiment_id,
            run_name=f"dagster-{dagster_run_id[:8]}",
            tags={"geoloc.kind": PARENT_KIND, "dagster.run_id": dagster_run_id},
        )
        return run.info.run_id


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested sections -> 'section.key' strings, as MLflow params must be flat strings."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, f"{name}."))
        else:
            flat[name] = str(value)[:MAX_PARAM_LENGTH]
    return flat


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
