"""Segmentation assets: the semantic view of every image (DualGeo), one partition per shard.

A backfill runs shards in parallel on any executor; each shard resumes where a killed run
stopped and keeps itself when it is already complete, so re-materializing is cheap. The shard's
content sha256 is its data version: downstream assets go stale only when labels really change.
"""

from typing import TYPE_CHECKING, Any

import dagster as dg

from geoloc_assets import settings as asset_settings
from geoloc_assets.assets.common import AUTOMATION, result_metadata
from geoloc_assets.partitions import gpu_pool, gpu_step_tags
from geoloc_assets.resources import MlflowTracker, ProjectResource
from geoloc_assets.settings import asset_config, code_version
from geoloc_core.params import section
from geoloc_core.segmentation.settings import MODEL_PROVIDERS, SegmentationSettings
from geoloc_core.segmentation.sharding import shard_keys

if TYPE_CHECKING:
    from geoloc_core.segmentation.step import ShardReport

GROUP = "segmentation"
ASSET = "segmentation_cache"
CHECK = "shard_is_sound"
MAX_LISTED_FAILURES = 50


def build_segmentation_assets(params: dict[str, Any]) -> list:
    _require_wiring()
    settings = SegmentationSettings.from_section(section(params, "segmentation"))
    n_shards = settings.n_shards
    uses_gpu = settings.provider in MODEL_PROVIDERS  # the demo's label maps need no model
    config_class = asset_config(ASSET, params)

    @dg.asset(
        name=ASSET,
        group_name=GROUP,
        automation_condition=AUTOMATION,
        deps=[
            dg.AssetDep("reference_manifest"),
            dg.AssetDep("benchmark_manifest", partition_mapping=dg.AllPartitionMapping()),
        ],
        partitions_def=dg.StaticPartitionsDefinition(shard_keys(n_shards)),
        code_version=code_version(ASSET, params),
        pool=gpu_pool(uses_gpu),
        op_tags=gpu_step_tags(uses_gpu),
        check_specs=[
            dg.AssetCheckSpec(
                CHECK,
                asset=ASSET,
                description="The shard re-read from disk: checksum, settings, every id covered.",
            )
        ],
        description=(
            "ADE20K label map + class histogram per reference and benchmark image, one file "
            "per shard of image ids (segmentation params section)."
        ),
    )
    def segmentation_cache(
        context: dg.AssetExecutionContext,
        config: config_class,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        from geoloc_core.segmentation.step import build_segmentation_shard

        shard = context.partition_key
        segmentation = config.segmentation.model_dump()
        if segmentation["n_shards"] != n_shards:
            raise ValueError(
                f"segmentation.n_shards={segmentation['n_shards']} in the run config, but the "
                f"partitions were built for {n_shards}: change n_shards in params.yaml instead"
            )
        names = list(config.benchmarks.names)
        tags = {"shard": shard, "benchmark": ",".join(names)}
        with mlflow_tracker.asset_run(context, config.model_dump(), tags) as run:
            report = build_segmentation_shard(
                project.paths, segmentation, names, shard, log=context.log.info
            )
            summary = report.summary()
            run.log_metrics(summary)
            if report.outcome.failures:
                run.log_artifact(report.failures_csv, "segmentation")
            context.log.info(f"segmentation shard {shard}: {summary}")
        return dg.MaterializeResult(
            metadata={**result_metadata(summary, run), **_details(report)},
            data_version=dg.DataVersion(report.outcome.digest),
            check_results=[
                dg.AssetCheckResult(
                    check_name=CHECK,
                    passed=not report.problems,
                    metadata={"problems": "\n".join(report.problems) or "none"},
                )
            ],
        )

    return [segmentation_cache]


def _details(report: "ShardReport") -> dict[str, Any]:
    """Where the shard is, why it was (re)made, and which images failed (by id)."""
    outcome = report.outcome
    listed = outcome.failures[:MAX_LISTED_FAILURES]
    lines = ["| id | reason |", "|---|---|", *(f"| {f.id} | {f.reason} |" for f in listed)]
    return {
        "path": dg.MetadataValue.path(str(outcome.path)),
        "failures_csv": dg.MetadataValue.path(str(report.failures_csv)),
        "reason": outcome.reason,
        "content_sha256": outcome.digest,
        "failed_images": dg.MetadataValue.md("\n".join(lines) if listed else "none"),
    }


def _require_wiring() -> None:
    """The asset's sections and logic version live in geoloc_assets/settings.py."""
    missing = [
        name
        for name, table in (
            ("ASSET_SECTIONS", asset_settings.ASSET_SECTIONS),
            ("LOGIC_VERSIONS", asset_settings.LOGIC_VERSIONS),
        )
        if ASSET not in table
    ]
    if missing:
        raise KeyError(
            f"geoloc_assets/settings.py has no '{ASSET}' entry in {missing}: add "
            f'ASSET_SECTIONS["{ASSET}"] = ("segmentation", "benchmarks") and '
            f'LOGIC_VERSIONS["{ASSET}"] = "1" (see README, Segmentation)'
        )
