"""Text assets: MP16-Pro-style place texts for every reference image.

place_texts reads only params section `text` (its code_version hashes nothing else), so
changing text.* marks place_texts and what depends on it stale, and nothing upstream.
"""

from typing import Any

import dagster as dg

from geoloc_assets.assets.common import AUTOMATION, materialized
from geoloc_assets.assets.data import markdown_table
from geoloc_assets.resources import MlflowTracker, ProjectResource
from geoloc_assets.settings import asset_config, code_version
from geoloc_core.text.table import read_place_texts

GROUP = "texts"
PREVIEW_ROWS = 20


def build_text_assets(params: dict[str, Any]) -> list:
    text_config = asset_config("place_texts", params)

    @dg.asset(
        group_name=GROUP,
        automation_condition=AUTOMATION,
        deps=["reference_manifest"],
        code_version=code_version("place_texts", params),
        description="Place fields and a caption per reference image (offline reverse geocoding;"
        " optional LMM descriptions), artifacts/texts/place_texts.csv.",
    )
    def place_texts(
        context: dg.AssetExecutionContext,
        config: text_config,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        from geoloc_core.steps.texts import build_place_texts

        paths = project.paths
        with mlflow_tracker.asset_run(context, config.model_dump()) as run:
            summary = build_place_texts(paths, config.text.model_dump())
            run.log_metrics(summary)
            sample = read_place_texts(paths.place_texts).head(PREVIEW_ROWS)
            sample_file = paths.place_texts.with_name("place_texts_sample.csv")
            sample.to_csv(sample_file, index=False, lineterminator="\n")
            run.log_artifact(sample_file, "texts")
            context.log.info(f"place texts: {summary}")
        extra = {
            "preview": dg.MetadataValue.md(markdown_table(sample)),
            "path": dg.MetadataValue.path(str(paths.place_texts)),
        }
        return materialized(summary, run, [paths.place_texts], extra)

    return [place_texts]
