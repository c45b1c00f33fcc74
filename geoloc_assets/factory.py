"""Assets from the stage registry: one factory gives every step the same wiring.

For each declared step: its Config (the params sections it reads, params.yaml's values as
defaults), its code version (the digest of the code it runs plus a hash of those sections), its
partitions, upstream, GPU pool and checks; its body reads what its upstream actually ran with
(geoloc_assets.recorded), opens a tracked MLflow run, runs the step and turns the step's outcome
into a materialization whose data version is what it wrote and whose metadata records the
settings it ran with.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from geoloc_assets.code_versions import code_version
from geoloc_assets.config import asset_config
from geoloc_assets.lineage import full_asset_graph
from geoloc_assets.partitions import GPU_POOL, configured_benchmarks, gpu_step_tags
from geoloc_assets.recorded import Record, RecordedSettings, recorded_metadata
from geoloc_assets.resources import MlflowTracker, ProjectResource, TrackedRun
from geoloc_assets.upstream_settled import UpstreamSettled
from geoloc_core.file_hash import content_digest
from geoloc_core.pipeline.manifests import raw_data_version
from geoloc_core.pipeline.outcome import CheckOutcome, Meta, StepContext, StepOutcome
from geoloc_core.pipeline.registry import (
    BENCHMARK,
    FEATURE_SHARD,
    SEGMENTATION_SHARD,
    STAGES,
)
from geoloc_core.pipeline.stage import Check, Stage, Upstream
from geoloc_core.segmentation.sharding import shard_keys

# Every asset below the raw data, evaluated by the automation sensor (`make ui` starts it with
# the daemon). Dagster's eager(): run when a dependency was updated (or will be, in the same
# tick) or when newly missing, not while a dependency is missing or in progress. Plus: run when
# the asset's own code version changed since the previous tick, i.e. when a params.yaml edit (or
# a code edit) reached the reloaded code location; what follows then comes through the updated
# dependency. A first tick has no previous code version, so a fresh instance requests nothing,
# and since_last_handled() requests each change once (no loop). UpstreamSettled: not while
# anything upstream runs, or is requested this tick in another run (Dagster orders steps within
# a run only); the trigger waits meanwhile (since_last_handled).
AUTOMATION = (
    dg.AutomationCondition.in_latest_time_window()
    & (
        dg.AutomationCondition.newly_missing()
        | dg.AutomationCondition.any_deps_updated()
        | dg.AutomationCondition.code_version_changed()
    ).since_last_handled()
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
    & UpstreamSettled()
).with_label("eager, or its code version changed, once upstream has settled")
EVERY_PARTITION = dg.AllPartitionMapping()
RAW_DATA_GROUP = "data"
# Dagster's UI asks for an asset's staleness without a partition, which Dagster answers "fresh"
# for a partitioned asset (dagster/_core/definitions/data_version.py, _get_status), and no page
# asks per partition: so a partitioned asset's description says where to look instead.
PARTITION_STALENESS = (
    "\n\nStaleness per partition: Dagster's UI shows none for a partitioned asset (no "
    "\"Unsynced\" badge, whatever its partitions' code versions); `geoloc status` lists each "
    "partition as fresh, stale or missing, with why. After a params.yaml or code edit the "
    "automation sensor re-materializes the stale partitions by itself."
)


def _partition_mapping(upstream: Upstream) -> dg.PartitionMapping | None:
    if upstream.partition is not None:
        return dg.SpecificPartitionsPartitionMapping([upstream.partition])
    return EVERY_PARTITION if upstream.every_partition else None


# the section whose n_shards cuts each shard partitioning
SHARD_SECTIONS = {FEATURE_SHARD: "features", SEGMENTATION_SHARD: "segmentation"}


def partitioning(
    kind: str | None, params: Mapping[str, Any]
) -> dg.StaticPartitionsDefinition | None:
    """How a kind of step is cut, for these params: by the configured benchmarks, or by the
    shards of its section's n_shards."""
    if kind is None:
        return None
    if kind == BENCHMARK:
        return configured_benchmarks(params["benchmarks"]["names"])
    return dg.StaticPartitionsDefinition(shard_keys(params[SHARD_SECTIONS[kind]]["n_shards"]))


def build_assets(
    params: Mapping[str, Any], only: Sequence[str] | None = None, stages: Sequence[Stage] = STAGES
) -> list:
    """The raw data's observation and every step's asset and checks (or just those named:
    then only the sections those steps read need to be in params)."""
    chosen = [s for s in stages if only is None or s.name in only]
    cuts = {kind: partitioning(kind, params) for kind in {s.partitioning for s in chosen}}
    # what the index and the embeddings steps cut and gather (absent in a data-layer-only test)
    shards = tuple(shard_keys(params["features"]["n_shards"])) if "features" in params else ()
    built: list = []
    if only is None or "raw_data" in only:
        built.append(raw_data_asset(params["data"]["root"]))
    for stage in chosen:
        built += step_asset(stage, params, cuts[stage.partitioning], shards)
    return built


def raw_data_asset(data_root: str) -> dg.SourceAsset:
    @dg.observable_source_asset(
        name="raw_data",
        group_name=RAW_DATA_GROUP,
        description="The raw input data, versioned by data.dvc (demo world or real datasets).",
    )
    def raw_data(project: ProjectResource) -> dg.DataVersion:
        return dg.DataVersion(raw_data_version(project.paths.root, data_root))

    return raw_data


def step_asset(
    stage: Stage,
    params: Mapping[str, Any],
    partitions_def: dg.PartitionsDefinition | None,
    feature_shards: tuple[str, ...],
) -> list:
    """The step's asset, and its checks that run on their own."""
    config_class = asset_config(stage.name, stage.sections, params)
    version = code_version(stage.name, params)
    gpus = stage.gpus(params)
    emitted = [check for check in stage.checks if check.evaluate is None]

    @dg.asset(
        name=stage.name,
        group_name=stage.group,
        description=stage.description + (PARTITION_STALENESS if partitions_def else ""),
        deps=[
            dg.AssetDep(u.step, partition_mapping=_partition_mapping(u)) for u in stage.upstream
        ],
        partitions_def=partitions_def,
        code_version=version,
        automation_condition=AUTOMATION,
        pool=GPU_POOL if gpus else None,
        op_tags=gpu_step_tags(gpus),
        check_specs=[
            dg.AssetCheckSpec(
                c.name, asset=stage.name, description=c.description, blocking=c.blocking
            )
            for c in emitted
        ]
        or None,
    )
    def _asset(
        context: dg.AssetExecutionContext,
        config: config_class,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        settings = config.model_dump()
        partition = context.partition_key if context.has_partition_key else None
        _refuse_other_shard_counts(stage, settings, partitions_def)
        recorded = RecordedSettings(context.instance, full_asset_graph(context))
        upstream = recorded.upstream(context.asset_key, partition)
        tags = _partition_tags(stage, partition)
        with mlflow_tracker.asset_run(context, settings, tags, upstream) as run:
            outcome = stage.step()(
                StepContext(
                    paths=project.paths,
                    settings=settings,
                    partition=partition,
                    run=run,
                    log=context.log.info,
                    warn=context.log.warning,
                    code_version=version,
                    orchestrator_run_id=context.run_id,
                    feature_shards=feature_shards,
                    upstream_settings=recorded.sections,
                )
            )
        drift = recorded.drift(context.asset_key, Record(settings, upstream))
        return materialization(outcome, run, recorded_metadata(settings, upstream, drift))

    checks = [separate_check(stage, check, partitions_def) for check in stage.checks]
    return [_asset, *(c for c in checks if c is not None)]


def separate_check(
    stage: Stage, check: Check, partitions_def: dg.PartitionsDefinition | None
) -> dg.AssetChecksDefinition | None:
    """A check that runs after the step and reads what it wrote (None: the step emits it)."""
    if check.evaluate is None:
        return None

    @dg.asset_check(
        asset=stage.name,
        name=check.name,
        blocking=check.blocking,
        description=check.description,
        partitions_def=partitions_def,
    )
    def _check(
        context: dg.AssetCheckExecutionContext, project: ProjectResource
    ) -> dg.AssetCheckResult:
        partition = context.partition_key if partitions_def is not None else None
        return check_result(check.evaluator()(project.paths, partition))

    return _check


def materialization(
    outcome: StepOutcome, run: TrackedRun, recorded: Mapping[str, Any]
) -> dg.MaterializeResult:
    """Metadata (the MLflow link, the summary's scalars, the step's extras, the settings it ran
    with), the data version (the step's own, else a digest of the files it wrote) and the
    verdicts of its checks."""
    version = outcome.data_version or content_digest(outcome.files)
    metadata: dict[str, Any] = {
        "mlflow_run": dg.MetadataValue.url(run.url),
        "mlflow_run_id": run.run_id,
    }
    metadata.update(
        {k: v for k, v in outcome.summary.items() if isinstance(v, bool | int | float | str)}
    )
    metadata["data_version"] = version
    metadata.update({k: metadata_value(v) for k, v in outcome.metadata.items()})
    metadata.update(recorded)
    return dg.MaterializeResult(
        metadata=metadata,
        data_version=dg.DataVersion(version),
        check_results=[check_result(v, name) for name, v in outcome.checks.items()] or None,
    )


def check_result(verdict: CheckOutcome, name: str | None = None) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=name,
        passed=verdict.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=verdict.description,
        metadata={k: metadata_value(v) for k, v in verdict.metadata.items()},
    )


def metadata_value(value: Any) -> Any:
    """A step's Meta as Dagster's rendered kinds; plain values as they are."""
    if not isinstance(value, Meta):
        return value
    kinds = {
        "md": dg.MetadataValue.md,
        "path": dg.MetadataValue.path,
        "json": dg.MetadataValue.json,
        "url": dg.MetadataValue.url,
    }
    return kinds[value.kind](value.value)


def _partition_tags(stage: Stage, partition: str | None) -> dict[str, str]:
    if partition is None:
        return {}
    return {"benchmark" if stage.partitioning == BENCHMARK else "shard": partition}


def _refuse_other_shard_counts(
    stage: Stage, settings: Mapping[str, Any], partitions_def: dg.PartitionsDefinition | None
) -> None:
    """Shard partitions are cut when the definitions load: a run config with another n_shards
    would write shards no partition stands for."""
    name = SHARD_SECTIONS.get(stage.partitioning or "")
    if name is None or name not in settings or partitions_def is None:
        return
    wanted, built = settings[name]["n_shards"], len(partitions_def.get_partition_keys())
    if wanted != built:
        raise ValueError(
            f"{name}.n_shards={wanted} in the run config, but the partitions were built for "
            f"{built}: change n_shards in params.yaml instead"
        )
