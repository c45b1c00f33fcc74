"""Materialize asset groups from the command line (what DVC stages and `make demo` call).

Assets of different partitionings cannot share a run, so a selection is cut, in topological
order, into runs of like partitioning: benchmark-partitioned runs go once per configured
benchmark, shard-partitioned runs once per shard, one after the other in this process.

In parallel (materialize_in_parallel) the same selection is one Dagster asset backfill: one run
per partition, ordered by Dagster's backfill logic, queued by its QueuedRunCoordinator (at most
`max_runs` at once), launched by the instance's run launcher in processes of their own, each
run on the multiprocess executor. This process only hosts those two daemon loops until the
backfill ends, as `dagster-daemon` would (without its sensors: no automation starts). Every
GPU step, in any run, waits for a slot of the GPU pool, limited to the GPUs present.
"""

import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import yaml
from filelock import FileLock

from geoloc_assets.executor import FORKSERVER
from geoloc_assets.partitions import GPU_POOL, is_benchmark_partitioning
from geoloc_assets.run_gate import RUN_COORDINATOR_CONFIG
from geoloc_core.params import ROOT_ENV

DAGSTER_HOME_DIR = ".dagster"
INSTANCE_LOCK = ".geoloc-instance.lock"
# The console shows INFO and up (progress, results); DEBUG events stay in the instance's logs.
RAW_DATA = dg.AssetKey("raw_data")
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
GPU_POOL_LIMIT_ENV = "GEOLOC_GPU_POOL_LIMIT"
NVIDIA_DRIVER = Path("/proc/driver/nvidia/gpus")  # one folder per GPU when the driver is loaded
CODE_LOCATION = ("geoloc_assets.definitions", "defs", "geoloc")  # module, attribute, name
# Each run's steps in processes forked from one that has already loaded the code location, so a
# step starts in a fraction of a second instead of importing the project again.
PARALLEL_RUN_CONFIG = {
    **QUIET_CONSOLE,
    "execution": {"config": {"multiprocess": {"start_method": FORKSERVER}}},
}
POLL_SECONDS = 1.0
# a backfill daemon that beat this recently (`make ui`) would process the backfill too
LIVE_DAEMON_SECONDS = 60


@dataclass(frozen=True)
class RunOutcome:
    assets: tuple[str, ...]
    partition: str | None
    run_id: str
    success: bool


def project_instance(root: Path) -> dg.DagsterInstance:
    """The persistent instance inside the project (ignored by git), unless DAGSTER_HOME is set,
    with the GPU pool limited to the GPUs of this machine."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        home = str((root / DAGSTER_HOME_DIR).resolve())
        os.environ["DAGSTER_HOME"] = home
    Path(home).mkdir(parents=True, exist_ok=True)
    config = Path(home) / "dagster.yaml"
    # processes starting together on a fresh instance (parallel DVC stages, two terminals) would
    # each create its sqlite storage and stamp its schema: one at a time
    with FileLock(str(Path(home) / INSTANCE_LOCK)):
        _write_instance_config(config)
        instance = dg.DagsterInstance.get()
        apply_gpu_pool_limit(instance)
    return instance


def _write_instance_config(config: Path) -> None:
    """No telemetry, and the run coordinator that checks run config against the settings tree
    (added to an instance made before it existed, unless that names its own coordinator)."""
    settings = (yaml.safe_load(config.read_text()) if config.is_file() else None) or {}
    if not config.is_file():
        settings["telemetry"] = {"enabled": False}
    if "run_coordinator" not in settings:
        settings["run_coordinator"] = dict(RUN_COORDINATOR_CONFIG)
        config.write_text(yaml.safe_dump(settings, sort_keys=False))


def gpu_pool_limit() -> int:
    """How many GPU-pool steps may run at once here: one per GPU torch sees.

    Without an NVIDIA driver the limit is 1 (and torch, seconds to import on 2 cores, is not
    loaded to find that out): the GPU steps then run torch on the CPU with num_threads intra-op
    threads each, so two at once would only fight over the same cores. GEOLOC_GPU_POOL_LIMIT
    overrides both, e.g. to share one large GPU between two steps.
    """
    override = os.environ.get(GPU_POOL_LIMIT_ENV)
    if override:
        if not override.isdigit() or int(override) < 1:
            raise ValueError(f"{GPU_POOL_LIMIT_ENV}={override!r}: must be a whole number >= 1")
        return int(override)
    if not NVIDIA_DRIVER.is_dir():
        return 1
    import torch

    return max(1, torch.cuda.device_count())


def apply_gpu_pool_limit(instance: dg.DagsterInstance) -> int:
    """Set the GPU pool's limit in the instance (as `dagster instance concurrency set` does), so
    every run on it, from the CLI, DVC or the UI, shares the same slots."""
    limit = gpu_pool_limit()
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return limit
    if GPU_POOL not in storage.get_concurrency_keys() or (
        storage.get_concurrency_info(GPU_POOL).slot_count != limit
    ):
        storage.set_concurrency_slots(GPU_POOL, limit)
    return limit


def selected_keys(
    defs: dg.Definitions, groups: Sequence[str], assets: Sequence[str]
) -> list[dg.AssetKey]:
    graph = defs.resolve_asset_graph()
    known_groups = set(graph.all_group_names)
    for group in groups:
        if group not in known_groups:
            raise ValueError(f"unknown asset group '{group}'; known groups: {sorted(known_groups)}")
    wanted = {dg.AssetKey(a) for a in assets}
    known_assets = {k for k in graph.toposorted_asset_keys if graph.get(k).is_materializable}
    unknown = sorted(k.to_user_string() for k in wanted - known_assets)
    if unknown:
        raise ValueError(
            f"unknown assets {unknown}; known: {sorted(k.to_user_string() for k in known_assets)}"
        )
    for group in groups:
        wanted |= set(graph.asset_keys_for_group(group))
    return [
        k for k in graph.toposorted_asset_keys if k in wanted and graph.get(k).is_materializable
    ]


def run_batches(
    defs: dg.Definitions, keys: Sequence[dg.AssetKey]
) -> list[tuple[list[dg.AssetKey], dg.PartitionsDefinition | None]]:
    """Consecutive keys of the same partitioning, in topological order."""
    graph = defs.resolve_asset_graph()
    batches: list[tuple[list[dg.AssetKey], dg.PartitionsDefinition | None]] = []
    for key in keys:
        partitions_def = graph.get(key).partitions_def
        if batches and batches[-1][1] == partitions_def:
            batches[-1][0].append(key)
        else:
            batches.append(([key], partitions_def))
    return batches


def partitions_to_run(
    partitions_def: dg.PartitionsDefinition | None, benchmarks: Sequence[str]
) -> list[str | None]:
    """Benchmark partitions: those of the benchmarks asked for; any other partitioning: all
    its keys."""
    if partitions_def is None:
        return [None]
    if is_benchmark_partitioning(partitions_def):
        known = set(partitions_def.get_partition_keys())
        return [b for b in benchmarks if b in known]
    return list(partitions_def.get_partition_keys())


def reads_raw_data(defs: dg.Definitions, keys: Sequence[dg.AssetKey]) -> bool:
    """Whether any of keys reads the raw data directly: only then must its version be observed
    before the run (the assets further down depend on what those wrote, not on the raw files)."""
    graph = defs.resolve_asset_graph()
    return any(RAW_DATA in graph.get(key).parent_keys for key in keys)


def observe_raw_data(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    """Record the raw data's current version so Dagster knows what is downstream of a change."""
    raw = [
        a
        for a in defs.assets or []
        if (isinstance(a, dg.SourceAsset) and a.key == RAW_DATA)
        or (isinstance(a, dg.AssetsDefinition) and RAW_DATA in a.keys)
    ]
    if raw:
        job = dg.define_asset_job(
            "observe_raw_data", selection=dg.AssetSelection.all(include_sources=True)
        )
        observer = dg.Definitions(assets=raw, jobs=[job], resources=defs.resources)
        observer.resolve_job_def("observe_raw_data").execute_in_process(instance=instance)


def materialize_selection(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    keys: Sequence[dg.AssetKey],
    benchmarks: Iterable[str],
) -> list[RunOutcome]:
    benchmarks = list(benchmarks)
    everything = list(defs.assets or []) + list(defs.asset_checks or [])
    outcomes: list[RunOutcome] = []
    for batch, partitions_def in run_batches(defs, keys):
        for partition in partitions_to_run(partitions_def, benchmarks):
            result = dg.materialize(
                everything,
                instance=instance,
                resources=defs.resources,
                selection=dg.AssetSelection.assets(*batch),
                partition_key=partition,
                raise_on_error=False,
                run_config=QUIET_CONSOLE,
            )
            outcome = RunOutcome(
                tuple(k.to_user_string() for k in batch), partition, result.run_id, result.success
            )
            outcomes.append(outcome)
            if not result.success:
                return outcomes
    return outcomes


def materialize_in_parallel(
    root: Path,
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    keys: Sequence[dg.AssetKey],
    benchmarks: Iterable[str],
    max_runs: int,
) -> list[RunOutcome]:
    """The selection as one asset backfill, at most max_runs runs at once (see the module doc)."""
    from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
    from dagster._core.definitions.events import AssetKeyPartitionKey
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
    from dagster._core.utils import make_new_backfill_id
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import ModuleTarget

    if max_runs < 1:
        raise ValueError(f"--parallel {max_runs}: must be at least 1 run at once")
    _refuse_beside_live_daemon(instance)
    graph = defs.resolve_asset_graph()
    benchmarks = list(benchmarks)
    wanted = {
        AssetKeyPartitionKey(key, partition)
        for key in keys
        for partition in partitions_to_run(graph.get(key).partitions_def, benchmarks)
    }
    backfill_id = make_new_backfill_id()
    backfill = PartitionBackfill.from_asset_graph_subset(
        backfill_id=backfill_id,
        backfill_timestamp=time.time(),
        tags={},
        dynamic_partitions_store=instance,
        asset_graph_subset=AssetGraphSubset.from_asset_partition_set(wanted, graph),
        title="geoloc materialize --parallel",
        description=None,
        run_config=PARALLEL_RUN_CONFIG,
    )
    queued = queue_limited_instance(instance, max_runs)
    queued.add_backfill(backfill)
    module, attribute, location = CODE_LOCATION
    target = ModuleTarget(module, attribute, str(Path(root).resolve()), location)
    with _root_for_subprocesses(root), WorkspaceProcessContext(queued, target) as workspace:
        _drive_backfill(workspace, backfill_id)
    outcomes = backfill_outcomes(queued, backfill_id)
    ended = queued.get_backfill(backfill_id)
    if ended is None or ended.status != BulkActionStatus.COMPLETED_SUCCESS:
        # e.g. a daemon error before any run failed: the command must not report success
        status = ended.status.value if ended else "missing"
        outcomes.append(RunOutcome((f"backfill ({status})",), None, backfill_id, False))
    return outcomes


@contextmanager
def _root_for_subprocesses(root: Path) -> Iterator[None]:
    """The code server, and every run and step process it starts, inherit this environment:
    they must build the definitions of this project."""
    previous = os.environ.get(ROOT_ENV)
    os.environ[ROOT_ENV] = str(Path(root).resolve())
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(ROOT_ENV, None)
        else:
            os.environ[ROOT_ENV] = previous


def queue_limited_instance(instance: dg.DagsterInstance, max_runs: int) -> dg.DagsterInstance:
    """The same instance (storage, pools, run launcher), its run queue limited to max_runs."""
    from dagster._core.instance.ref import InstanceRef

    home = Path(instance.root_directory)
    config_file = home / "dagster.yaml"
    config = (yaml.safe_load(config_file.read_text()) if config_file.is_file() else None) or {}
    concurrency = dict(config.get("concurrency") or {})
    concurrency["runs"] = {**(concurrency.get("runs") or {}), "max_concurrent_runs": max_runs}
    ref = InstanceRef.from_dir(str(home), overrides={"concurrency": concurrency})
    return dg.DagsterInstance.from_ref(ref)


def backfill_outcomes(instance: dg.DagsterInstance, backfill_id: str) -> list[RunOutcome]:
    """One outcome per run the backfill launched, in launch order."""
    from dagster._core.storage.tags import BACKFILL_ID_TAG, PARTITION_NAME_TAG

    runs = instance.get_runs(filters=dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
    outcomes = []
    for run in sorted(runs, key=lambda r: instance.get_run_record_by_id(r.run_id).create_timestamp):
        assets = tuple(sorted(k.to_user_string() for k in run.asset_selection or ()))
        success = run.status == dg.DagsterRunStatus.SUCCESS
        outcomes.append(RunOutcome(assets, run.tags.get(PARTITION_NAME_TAG), run.run_id, success))
    return outcomes


def _drive_backfill(workspace, backfill_id: str) -> None:
    """Dagster's backfill and run-queue iterations, until the backfill ends; on Ctrl-C its runs
    are terminated and the backfill canceled."""
    from dagster._core.execution.backfill import BULK_ACTION_TERMINAL_STATUSES, BulkActionStatus
    from dagster._daemon.backfill import execute_backfill_iteration
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
        QueuedRunCoordinatorDaemon,
    )

    instance = workspace.instance
    logger = logging.getLogger("geoloc.backfill")
    try:
        with QueuedRunCoordinatorDaemon(interval_seconds=POLL_SECONDS) as queue:
            while True:
                for error in execute_backfill_iteration(workspace, logger):
                    _log_daemon_error(logger, error)
                for error in queue.run_iteration(workspace):
                    _log_daemon_error(logger, error)
                backfill = instance.get_backfill(backfill_id)
                if backfill is None or backfill.status in BULK_ACTION_TERMINAL_STATUSES:
                    return
                time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        backfill = instance.get_backfill(backfill_id)
        if backfill is not None:
            instance.update_backfill(backfill.with_status(BulkActionStatus.CANCELED))
        for outcome in backfill_outcomes(instance, backfill_id):
            run = instance.get_run_by_id(outcome.run_id)
            if run is not None and not run.is_finished:
                instance.run_launcher.terminate(outcome.run_id)
        raise


def _log_daemon_error(logger: logging.Logger, error) -> None:
    from dagster._utils.error import SerializableErrorInfo

    if isinstance(error, SerializableErrorInfo):
        logger.error(error.to_string())


def _refuse_beside_live_daemon(instance: dg.DagsterInstance) -> None:
    """A running dagster-daemon (`make ui`) on the same instance would take the backfill too."""
    heartbeat = instance.get_daemon_heartbeats().get("BACKFILL")
    if heartbeat is not None and time.time() - heartbeat.timestamp < LIVE_DAEMON_SECONDS:
        raise ValueError(
            "a Dagster daemon is running on this instance (`make ui`?): launch the backfill "
            "from the UI (Materialize all partitions), or stop the daemon to use --parallel"
        )
