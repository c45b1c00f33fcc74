"""LMM assets per benchmark: G3's geo-diversification (answers that join the verification
pool) and DualGeo's reasoning over the re-ranked candidates (the decision). Each runs only in
its own lmm.mode, and neither when lmm.provider is none (the demo default: G3's "without
geo-diversification" row); then it writes an empty answers file and says why."""

from typing import Any

import dagster as dg

from geoloc_assets.assets.common import AUTOMATION, materialized
from geoloc_assets.resources import MlflowTracker, ProjectResource
from geoloc_assets.settings import asset_config, code_version

LMM_GROUP = "lmm"
DECISION_GROUP = "verification"  # DualGeo's LMM decides: it runs with the verification stage


def build_lmm_assets(params: dict[str, Any], benchmarks: dg.PartitionsDefinition) -> list:
    def lmm_asset(name: str, mode: str, group: str, deps: list[str], description: str):
        config_class = asset_config(name, params)

        @dg.asset(
            name=name,
            group_name=group,
            deps=deps,
            partitions_def=benchmarks,
            code_version=code_version(name, params),
            automation_condition=AUTOMATION,
            description=description,
        )
        def _lmm(
            context: dg.AssetExecutionContext,
            config: config_class,
            project: ProjectResource,
            mlflow_tracker: MlflowTracker,
        ) -> dg.MaterializeResult:
            from geoloc_core.steps.lmm import run_lmm_stage

            benchmark = context.partition_key
            paths = project.paths
            section = config.lmm.model_dump()
            tags = {"benchmark": benchmark, "lmm": f"{section['provider']}:{section['model']}"}
            with mlflow_tracker.asset_run(context, section_params(section), tags) as run:
                summary = run_lmm_stage(
                    paths, benchmark, section, log=context.log.info, for_mode=mode
                )
                run.log_metrics(flat_counts(summary))
                run.log_artifact(paths.lmm_summary(benchmark, mode))
            files = [paths.lmm_answers(benchmark, mode)]
            extra = {
                "drops": dg.MetadataValue.json(summary["drops"]),
                "errors": dg.MetadataValue.json(summary.get("errors", {})),
            }
            return materialized(flat_counts(summary) | _labels(summary), run, files, extra)

        return _lmm

    return [
        lmm_asset(
            "lmm_diversification",
            "g3",
            LMM_GROUP,
            ["candidates"],
            "G3's geo-diversification: a zero-shot and RAG prompts (r similar and r dissimilar "
            "neighbour coordinates) per query, n answers each, parsed and counted.",
        ),
        lmm_asset(
            "lmm_reasoning",
            "dualgeo",
            DECISION_GROUP,
            ["rerank"],
            "DualGeo's LMM reasoning: the query photo with the top-m re-ranked candidates' "
            "photos, coordinates and place names; its answer is the decision.",
        ),
    ]


def section_params(section: dict[str, Any]) -> dict[str, Any]:
    """The lmm section as MLflow params, prompt texts left out (they are long and logged in
    the asset's code version hash)."""
    return {"lmm": {k: v for k, v in section.items() if not k.startswith("prompt_")}}


def flat_counts(summary: dict[str, Any]) -> dict[str, float]:
    """Numbers of the summary (drops by reason as drop_<reason>) for MLflow and Dagster."""
    counts = {
        k: v for k, v in summary.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    counts.update({f"drop_{k}": v for k, v in summary.get("drops", {}).items()})
    counts.update({f"error_{k.replace(' ', '_')}": v for k, v in summary.get("errors", {}).items()})
    counts["budget_exhausted"] = int(bool(summary.get("budget_exhausted")))
    counts["skipped"] = int(bool(summary.get("skipped")))
    return counts


def _labels(summary: dict[str, Any]) -> dict[str, str]:
    return {k: str(summary.get(k, "")) for k in ("provider", "model", "mode", "skip_reason")}
