"""segmentation_cache as a Dagster asset: one MLflow run per shard, a data version that follows
the content, and staleness that follows only the segmentation (and benchmarks) sections.

The asset is built from its registry entry (geoloc_core/pipeline/registry.py), as shipped. The
upstream manifests are stood in for by assets of the same keys and partitions that write the demo
world's manifests, so these tests exercise the segmentation asset without depending on the data
step's own settings; the whole graph is the end-to-end test's job."""

import copy
from pathlib import Path

import dagster as dg
import pytest
import yaml
from mlflow.tracking import MlflowClient

from geoloc_assets.code_versions import code_version
from geoloc_assets.factory import build_assets
from geoloc_assets.partitions import benchmark_partitions
from geoloc_assets.resources import MlflowTracker, ProjectResource
from geoloc_assets.runner import project_instance
from geoloc_assets.staleness import asset_states
from geoloc_core.params import load_params
from geoloc_core.paths import ProjectPaths
from geoloc_core.pipeline.registry import asset_sections, stage_named
from geoloc_core.segmentation.cache import SegmentationCache
from tests.test_segmentation_shards import (
    BENCHMARKS,
    segmentation_section,
    write_manifest_for,
)

ASSET = "segmentation_cache"
SHARDS = ["000", "001"]


@pytest.fixture
def dagster_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def set_segmentation(root: Path, **changes) -> None:
    params_file = root / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["segmentation"] = segmentation_section(**changes)
    params["benchmarks"]["names"] = list(BENCHMARKS)  # the stand-in manifests' benchmarks
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))


def stand_in_manifests() -> list[dg.AssetsDefinition]:
    @dg.asset(name="reference_manifest", code_version="stand-in")
    def reference_manifest(project: ProjectResource) -> None:
        write_manifest_for(Path(project.root), "reference")

    @dg.asset(
        name="benchmark_manifest", partitions_def=benchmark_partitions, code_version="stand-in"
    )
    def benchmark_manifest(context: dg.AssetExecutionContext, project: ProjectResource) -> None:
        write_manifest_for(Path(project.root), context.partition_key)

    return [reference_manifest, benchmark_manifest]


def definitions(root: Path) -> dg.Definitions:
    paths = ProjectPaths(root)
    return dg.Definitions(
        assets=[*stand_in_manifests(), *build_assets(load_params(root), only=[ASSET])],
        resources={
            "project": ProjectResource(root=str(root)),
            "mlflow_tracker": MlflowTracker(
                tracking_uri=paths.tracking_uri,
                artifact_root=str(paths.mlruns / "artifacts"),
            ),
        },
    )


def materialize(defs: dg.Definitions, instance, asset: str, partition: str | None = None):
    result = dg.materialize(
        list(defs.assets),
        instance=instance,
        resources=defs.resources,
        selection=dg.AssetSelection.assets(asset),
        partition_key=partition,
        raise_on_error=False,
    )
    assert result.success, f"{asset}[{partition}] failed"
    return result


def states(defs: dg.Definitions, instance) -> dict[tuple[str, str | None], str]:
    """Status per (asset, partition), each asset asked for its own partitions."""
    found = {}
    for partitions in (SHARDS, BENCHMARKS):
        for state in asset_states(defs, instance, partitions):
            if state.partition is None or state.partition in partitions_of(defs, state.asset):
                found[(state.asset, state.partition)] = state.status
    return found


def partitions_of(defs: dg.Definitions, asset: str) -> list[str]:
    node = defs.resolve_asset_graph().get(dg.AssetKey(asset))
    return list(node.partitions_def.get_partition_keys()) if node.partitions_def else []


def test_shards_materialize_tracked_and_stale_only_on_their_sections(tiny_project, dagster_home):
    set_segmentation(tiny_project)
    defs = definitions(tiny_project)
    instance = project_instance(tiny_project)
    materialize(defs, instance, "reference_manifest")
    for benchmark in BENCHMARKS:
        materialize(defs, instance, "benchmark_manifest", benchmark)
    for shard in SHARDS:
        result = materialize(defs, instance, ASSET, shard)
        assert [c.passed for c in result.get_asset_check_evaluations()] == [True]

    paths = ProjectPaths(tiny_project)
    cache = SegmentationCache(ProjectPaths(tiny_project).segmentation_dir)
    assert len(cache.ids()) == 84  # 72 reference + validation, 6 + 6 benchmark images
    event = instance.get_latest_materialization_event(dg.AssetKey(ASSET))
    metadata = event.asset_materialization.metadata
    assert metadata["images"].value + metadata["failures"].value == metadata["wanted"].value
    client = MlflowClient(paths.tracking_uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("geoloc").experiment_id],
        filter_string=f"tags.`dagster.asset_key` = '{ASSET}'",
    )
    assert sorted(r.data.tags["shard"] for r in runs) == SHARDS
    assert {r.data.tags["benchmark"] for r in runs} == {",".join(BENCHMARKS)}
    assert {r.data.params["segmentation.provider"] for r in runs} == {"demo"}
    assert all(r.data.metrics["images"] > 0 and r.data.metrics["bytes"] > 0 for r in runs)
    fresh = states(defs, instance)
    assert len(fresh) == 1 + len(BENCHMARKS) + len(SHARDS)
    assert set(fresh.values()) == {"fresh"}, fresh

    # an execution setting: stale in Dagster (its section changed), but the shards are kept
    set_segmentation(tiny_project, batch_size=4)
    defs = definitions(tiny_project)
    stale = {key for key, status in states(defs, instance).items() if status != "fresh"}
    assert stale == {(ASSET, shard) for shard in SHARDS}
    before = event.asset_materialization.tags["dagster/data_version"]
    rerun = materialize(defs, instance, ASSET, "001")
    kept = rerun.asset_materializations_for_node(ASSET)[0]
    assert kept.metadata["kept"].value is True
    assert kept.tags["dagster/data_version"] == before  # same content, same data version

    # a content setting: stale and recomputed, with a new data version
    set_segmentation(tiny_project, batch_size=4, label_noise=0.1)
    defs = definitions(tiny_project)
    stale = {key for key, status in states(defs, instance).items() if status != "fresh"}
    assert stale == {(ASSET, shard) for shard in SHARDS}
    redone = materialize(defs, instance, ASSET, "001").asset_materializations_for_node(ASSET)[0]
    assert redone.metadata["kept"].value is False
    assert redone.tags["dagster/data_version"] != before


def test_only_segmentation_cache_follows_the_segmentation_section(tiny_project):
    set_segmentation(tiny_project)
    params = load_params(tiny_project)
    names = list(asset_sections())

    def versions(p: dict) -> dict[str, str]:
        return {name: code_version(name, p) for name in names}

    before = versions(params)
    changed = copy.deepcopy(params)
    changed["segmentation"]["output_resolution"] = 16
    after = versions(changed)
    assert {n for n in names if before[n] != after[n]} == {ASSET}
    for section in ("evaluation", "retrieval", "train", "model", "index"):
        downstream = copy.deepcopy(params)
        first = next(iter(downstream[section]))
        downstream[section][first] = "changed"
        assert versions(downstream)[ASSET] == before[ASSET], section


def test_an_undeclared_step_names_the_declared_ones():
    with pytest.raises(KeyError, match="segmentation_cache"):
        stage_named("segmentation_caches")
