"""The serving step: the whole predict path logged as an MLflow pyfunc model and registered.

What is served (the bundle's files and digests) is written to artifacts/serving/served_model.json,
DVC's output; the registered version and the MLflow run go to the materialization's metadata.
The data version is the bundle's content, so logging identical files again changes nothing
downstream.
"""

from __future__ import annotations

import hashlib
import json

from geoloc_core.params import load_params, section
from geoloc_core.pipeline.outcome import Meta, StepContext, StepOutcome
from geoloc_core.predict.settings import UPSTREAM_SECTIONS
from geoloc_core.serving.registry import log_served_model

REGISTERED_PREDICT_MODEL = "geoloc-predict"


def served_model(ctx: StepContext) -> StepOutcome:
    paths = ctx.paths
    # the run's values of the hashed sections, params.yaml's of the others
    params = load_params(paths.root)
    sections = {name: section(params, name) for name in UPSTREAM_SECTIONS}
    sections.update({name: dict(values) for name, values in ctx.settings.items()})
    served = log_served_model(
        paths.root,
        sections,
        ctx.run.client,
        ctx.run.run_id,
        REGISTERED_PREDICT_MODEL,
        tags={"dagster.run_id": ctx.orchestrator_run_id, "code_version": ctx.code_version},
    )
    summary = {
        "registered_model": served.name,
        "registered_version": served.version,
        "model_uri": served.uri,
        "bundle_files": len(served.bundle_files),
        "bundle_mb": round(served.bundle_bytes / 1e6, 3),
    }
    ctx.run.log_metrics({k: summary[k] for k in ("bundle_files", "bundle_mb")})
    ctx.run.set_tags({"geoloc.registered_model": served.uri})
    # what is served, by content only (identical inputs, identical bytes); the version and
    # the run are this materialization's, in its metadata and in MLflow
    record = paths.served_model_record
    record.parent.mkdir(parents=True, exist_ok=True)
    written = {
        "registered_model": served.name,
        "bundle_bytes": served.bundle_bytes,
        "bundle": served.bundle_files,
    }
    record.write_text(json.dumps(written, indent=2, sort_keys=True) + "\n")
    ctx.log(f"served_model: {served.uri} ({summary['bundle_mb']} MB bundle)")
    content = json.dumps(served.bundle_files, sort_keys=True).encode()
    version = hashlib.sha256(content).hexdigest()[:24]
    extra = {
        "registered_model": served.name,
        "registered_version": served.version,
        "model_uri": served.uri,
        "serve": Meta(
            "md", f"`mlflow models serve -m {served.uri} --host 127.0.0.1 --env-manager local`"
        ),
        "record": Meta("path", str(record)),
    }
    return StepOutcome(summary, data_version=version, metadata=extra)
