"""What every asset does around its step: track it in MLflow and describe it to Dagster."""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from geoloc_assets.resources import TrackedRun


def result_metadata(summary: Mapping[str, Any], run: TrackedRun) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "mlflow_run": dg.MetadataValue.url(run.url),
        "mlflow_run_id": run.run_id,
    }
    for key, value in summary.items():
        if isinstance(value, bool | int | float | str):
            metadata[key] = value
    return metadata
