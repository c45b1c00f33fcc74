"""Materialize asset groups from the command line (what DVC stages and `make demo` call).

Assets of different partitionings cannot share a run, so a selection is cut, in topological
order, into runs of like partitioning: benchmark-partitioned runs go once per configured
benchmark, shard-partitioned runs once per shard.
"""

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from geoloc_assets.partitions import is_benchmark_partitioning

DAGSTER_HOME_DIR = ".dagster"
# The console shows INFO and up (progress, results); DEBUG events stay in the instance's logs.
RAW_DATA = dg.AssetKey("raw_data")
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


@dataclass(frozen=True)
class RunOutcome:
    assets: tuple[str, ...]
    partition: str | None
    run_id: str
    success: bool


def project_instance(root: Path) -> dg.DagsterInstance:
    """The persistent instance inside the project (ignored by git), unless DAGSTER_HOME is set."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        home = str((root / DAGSTER_HOME_DIR).resolve())
        os.environ["DAGSTER_HOME"] = home
    Path(home).mkdir(parents=True, exist_ok=True)
    config = Path(home) / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    return dg.DagsterInstance.get()


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
