"""What every asset does around its step: track it in MLflow, describe it to Dagster, and say
what it wrote (its data version), so downstream staleness follows content, not run config."""

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from geoloc_assets.resources import TrackedRun
from geoloc_core.file_hash import file_sha256

# Every asset below the raw data: materializing a changed asset brings what follows up to date
# when the automation sensor runs (`make ui` starts it with the daemon).
AUTOMATION = dg.AutomationCondition.eager()


def result_metadata(summary: Mapping[str, Any], run: TrackedRun) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "mlflow_run": dg.MetadataValue.url(run.url),
        "mlflow_run_id": run.run_id,
    }
    for key, value in summary.items():
        if isinstance(value, bool | int | float | str):
            metadata[key] = value
    return metadata


def content_version(files: Iterable[Path]) -> dg.DataVersion:
    """A digest of the files' bytes (folders: every file in them, by relative path), so a
    re-run that writes identical bytes changes nothing downstream."""
    digest = hashlib.sha256()
    for item in files:
        item = Path(item)
        members = sorted(p for p in item.rglob("*") if p.is_file()) if item.is_dir() else [item]
        for member in members:
            name = member.relative_to(item) if item.is_dir() else member.name
            digest.update(str(name).encode() + b"\0" + file_sha256(member).encode())
    return dg.DataVersion(digest.hexdigest()[:24])


def materialized(
    summary: Mapping[str, Any],
    run: TrackedRun,
    files: Iterable[Path],
    extra: Mapping[str, Any] | None = None,
) -> dg.MaterializeResult:
    """The usual result: metadata with the MLflow link (plus extra), and the content's data
    version."""
    version = content_version(files)
    metadata = result_metadata(summary, run)
    metadata["data_version"] = version.value
    metadata.update(extra or {})
    return dg.MaterializeResult(metadata=metadata, data_version=version)
