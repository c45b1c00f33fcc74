"""Serving asset: the whole predict path logged as an MLflow pyfunc model and registered.

served_model bundles what `geoloc predict` reads (model, towers, index, place texts, gallery)
with the params sections it reads, logs it into its MLflow run and registers a new version of
`geoloc-predict`; `mlflow models serve -m models:/geoloc-predict/latest` then answers requests
(docs/predict.md). Its code version hashes retrieval, index, rerank, lmm and verification;
segmentation and text reach it through its upstream assets' content. What is served (the
bundle's files and digests) is recorded in artifacts/serving/served_model.json, DVC's output;
the version and the MLflow run are in the materialization's metadata. The data version is the
bundle's content, so logging identical files again changes nothing downstream.
"""

import hashlib
import json
from typing import Any

import dagster as dg

from geoloc_assets.assets.common import AUTOMATION, result_metadata
from geoloc_assets.resources import MlflowTracker, ProjectResource
from geoloc_assets.settings import asset_config, code_version

GROUP = "serving"
REGISTERED_MODEL = "geoloc-predict"


def build_serving_assets(params: dict[str, Any]) -> list:
    served_config = asset_config("served_model", params)

    @dg.asset(
        group_name=GROUP,
        deps=["alignment_model", "retrieval_index", "place_texts"],
        code_version=code_version("served_model", params),
        automation_condition=AUTOMATION,
        description=(
            f"The predict path as an MLflow pyfunc model (base64 photos in, ranked candidates "
            f"out), self-contained, registered as {REGISTERED_MODEL}."
        ),
    )
    def served_model(
        context: dg.AssetExecutionContext,
        config: served_config,
        project: ProjectResource,
        mlflow_tracker: MlflowTracker,
    ) -> dg.MaterializeResult:
        from geoloc_core.params import load_params, section
        from geoloc_core.predict.settings import UPSTREAM_SECTIONS
        from geoloc_core.serving.registry import log_served_model

        paths = project.paths
        # the launchpad's values of the hashed sections, params.yaml's of the others
        params = load_params(paths.root)
        sections = {name: section(params, name) for name in UPSTREAM_SECTIONS}
        sections.update(config.model_dump())
        with mlflow_tracker.asset_run(context, config.model_dump()) as run:
            served = log_served_model(
                paths.root,
                sections,
                run.client,
                run.run_id,
                REGISTERED_MODEL,
                tags={"dagster.run_id": context.run_id, "code_version": _code_version(context)},
            )
            summary = {
                "registered_model": served.name,
                "registered_version": served.version,
                "model_uri": served.uri,
                "bundle_files": len(served.bundle_files),
                "bundle_mb": round(served.bundle_bytes / 1e6, 3),
            }
            run.log_metrics({k: summary[k] for k in ("bundle_files", "bundle_mb")})
            run.set_tags({"geoloc.registered_model": served.uri})
        # what is served, by content only (DVC's output: identical inputs, identical bytes);
        # the version and the run are this materialization's, in its metadata and in MLflow
        record = paths.served_model_record
        record.parent.mkdir(parents=True, exist_ok=True)
        written = {
            "registered_model": served.name,
            "bundle_bytes": served.bundle_bytes,
            "bundle": served.bundle_files,
        }
        record.write_text(json.dumps(written, indent=2, sort_keys=True) + "\n")
        context.log.info(f"served_model: {served.uri} ({summary['bundle_mb']} MB bundle)")
        # the bundle's content decides the data version: the run id and version change on
        # every materialization, what is served changes only with the files and settings
        content = json.dumps(served.bundle_files, sort_keys=True).encode()
        version = dg.DataVersion(hashlib.sha256(content).hexdigest()[:24])
        metadata = result_metadata(summary, run)
        metadata.update(
            {
                "data_version": version.value,
                "registered_model": served.name,
                "registered_version": served.version,
                "model_uri": served.uri,
                "serve": dg.MetadataValue.md(
                    f"`mlflow models serve -m {served.uri} --host 127.0.0.1 --env-manager local`"
                ),
                "record": dg.MetadataValue.path(str(record)),
            }
        )
        return dg.MaterializeResult(metadata=metadata, data_version=version)

    return [served_model]


def _code_version(context: dg.AssetExecutionContext) -> str:
    return context.assets_def.code_versions_by_key.get(context.asset_key) or ""
