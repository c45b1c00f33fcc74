"""Shards run side by side on Dagster's own machinery (one asset backfill, its run queue, the
multiprocess executor), and the GPU pool lets only as many GPU steps run as there are GPUs.

One parallel materialization, shared by the first two tests: segmentation_cache and
backbone_features of both shards of a copy of the materialized tiny project, at most 2 runs at
once, with one GPU slot. The segmentation shards are deleted first so they are really computed.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import torch
import yaml
from dagster._core.storage.tags import BACKFILL_ID_TAG, PARTITION_NAME_TAG
from mlflow.tracking import MlflowClient

from geoloc_assets.cli import main
from geoloc_assets.definitions import build_definitions
from geoloc_assets.partitions import GPU_POOL
from geoloc_assets.runner import GPU_POOL_LIMIT_ENV, gpu_pool_limit, project_instance
from geoloc_core.paths import ProjectPaths

SHARDS = ("000", "001")
SEGMENTATION = "segmentation_cache"  # no pool with the demo provider
FEATURES = "backbone_features"  # in the gpu pool
GPU_ASSETS = {
    "backbone_weights",
    "backbone_features",
    "alignment_model",
    "reference_embeddings",
    "candidates",
}
RUN = "run"
WINDOW_EVENTS = {
    dg.DagsterEventType.RUN_START,
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
}


@dataclass(frozen=True)
class Window:
    start: float
    end: float


def overlap(a: Window, b: Window) -> float:
    """Seconds both windows were open (negative: the gap between them)."""
    return min(a.end, b.end) - max(a.start, b.start)


@dataclass(frozen=True)
class ParallelRun:
    root: Path
    exit_code: int
    instance: dg.DagsterInstance
    runs: list[dg.DagsterRun]
    # (step key or "run", shard) -> from its start event to its success event
    windows: dict[tuple[str, str], Window]
    gpu_slots: int


def windows_of(instance: dg.DagsterInstance, runs: list[dg.DagsterRun]) -> dict:
    found: dict[tuple[str, str], dict[str, float]] = {}
    for run in runs:
        shard = run.tags[PARTITION_NAME_TAG]
        for entry in instance.all_logs(run.run_id, of_type=WINDOW_EVENTS):
            event = entry.dagster_event
            edge = "start" if event.event_type in {
                dg.DagsterEventType.RUN_START,
                dg.DagsterEventType.STEP_START,
            } else "end"
            found.setdefault((event.step_key or RUN, shard), {})[edge] = entry.timestamp
    return {key: Window(**edges) for key, edges in found.items() if len(edges) == 2}


@pytest.fixture(scope="module")
def parallel_run(materialized_template: Path, tmp_path_factory) -> Iterator[ParallelRun]:
    root = tmp_path_factory.mktemp("parallel") / "project"
    shutil.copytree(materialized_template, root)
    for shard_file in (root / "artifacts" / "segmentation").glob("shard-*"):
        shard_file.unlink()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(root / ".dagster"))
        env.setenv(GPU_POOL_LIMIT_ENV, "1")  # one GPU, whatever this machine has
        selection = ["--asset", SEGMENTATION, "--asset", FEATURES]
        started = time.monotonic()
        exit_code = main(["--root", str(root), "materialize", *selection, "--parallel", "2"])
        print(f"parallel materialize took {time.monotonic() - started:.1f} s")
        instance = dg.DagsterInstance.get()
        runs = [r for r in instance.get_runs() if BACKFILL_ID_TAG in r.tags]
        gpu_slots = instance.event_log_storage.get_concurrency_info(GPU_POOL).slot_count
        yield ParallelRun(root, exit_code, instance, runs, windows_of(instance, runs), gpu_slots)


def test_shards_run_at_the_same_time_and_are_recorded(parallel_run: ParallelRun):
    assert parallel_run.exit_code == 0
    runs = parallel_run.runs
    assert sorted(r.tags[PARTITION_NAME_TAG] for r in runs) == list(SHARDS)
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    [backfill_id] = {r.tags[BACKFILL_ID_TAG] for r in runs}  # one backfill
    run_ids = {r.run_id for r in runs}

    # the instance holds each shard's new materialization, from the backfill's runs
    instance = parallel_run.instance
    for asset in (SEGMENTATION, FEATURES):
        for shard in SHARDS:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[shard]),
                limit=1,
            ).records
            assert records and records[0].run_id in run_ids, (asset, shard)

    # each shard is its own finished MLflow run
    params = yaml.safe_load((parallel_run.root / "params.yaml").read_text())
    client = MlflowClient(tracking_uri=ProjectPaths(parallel_run.root).tracking_uri)
    experiment = client.get_experiment_by_name(params["tracking"]["experiment"])
    tracked = client.search_runs(
        [experiment.experiment_id],
        filter_string=(
            f"tags.`dagster.asset_key` = '{SEGMENTATION}' and attributes.status = 'FINISHED'"
        ),
    )
    ours = [r for r in tracked if r.data.tags["dagster.run_id"] in run_ids]
    assert {r.data.tags["dagster.partition"] for r in ours} == set(SHARDS)
    # under one MLflow parent: the backfill
    assert {r.data.tags["geoloc.group"] for r in ours} == {f"backfill:{backfill_id}"}

    # and the two shards' segmentation steps were running at the same moment
    windows = parallel_run.windows
    both = overlap(windows[(SEGMENTATION, "000")], windows[(SEGMENTATION, "001")])
    print(f"segmentation shards overlap {both:.1f} s")
    assert both > 0, "the shards ran one after the other"


def test_gpu_pool_lets_one_gpu_step_run_at_a_time(parallel_run: ParallelRun):
    windows = parallel_run.windows
    runs_together = overlap(windows[(RUN, "000")], windows[(RUN, "001")])
    gpu_together = overlap(windows[(FEATURES, "000")], windows[(FEATURES, "001")])
    print(f"runs overlap {runs_together:.1f} s; gpu steps overlap {gpu_together:.1f} s")
    assert runs_together > 0, "both runs were live at once, so only the pool kept them apart"
    assert gpu_together <= 0, "two GPU steps ran at once with one GPU slot"
    assert parallel_run.gpu_slots == 1


def test_gpu_steps_are_in_the_pool_limited_to_the_gpus_present(
    tiny_project: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DAGSTER_HOME", str(tiny_project / ".dagster"))
    monkeypatch.delenv(GPU_POOL_LIMIT_ENV, raising=False)
    expected = max(1, torch.cuda.device_count())
    assert gpu_pool_limit() == expected
    instance = project_instance(tiny_project)
    assert instance.event_log_storage.get_concurrency_info(GPU_POOL).slot_count == expected

    def pools(root: Path) -> dict[str, set[str]]:
        graph = build_definitions(root).resolve_asset_graph()
        return {k.to_user_string(): graph.get(k).pools for k in graph.materializable_asset_keys}

    in_pool = {name for name, names in pools(tiny_project).items() if names == {GPU_POOL}}
    assert in_pool == GPU_ASSETS  # the demo segmentation runs no model

    params_file = tiny_project / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["segmentation"]["provider"] = "segformer"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    assert pools(tiny_project)[SEGMENTATION] == {GPU_POOL}
