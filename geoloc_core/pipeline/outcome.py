"""What a step is handed and what it hands back, in plain Python (no orchestrator types)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from geoloc_core.paths import ProjectPaths


class RunLog(Protocol):
    """The tracked run a step logs into: an MLflow run (its client and id, for the steps that
    register models) with the project's logging calls."""

    client: Any
    run_id: str

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None: ...

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None: ...

    def set_tags(self, tags: Mapping[str, str]) -> None: ...


# (asset, partition) -> every params section that produced that materialization
UpstreamSettings = Callable[[str, str | None], Mapping[str, Mapping[str, Any]]]


@dataclass(frozen=True)
class StepContext:
    """One materialization: where the project is, the settings it runs with (section name ->
    values, launchpad overrides included), its partition, and where to log.

    upstream_settings(asset, partition): every params section that produced that upstream
    materialization (its own and everything above it), as the orchestrator recorded it when it
    ran, which may differ from params.yaml (a launchpad override upstream)."""

    paths: ProjectPaths
    settings: Mapping[str, Mapping[str, Any]]
    partition: str | None
    run: RunLog
    log: Callable[[str], None]
    warn: Callable[[str], None]
    upstream_settings: UpstreamSettings
    code_version: str = ""
    orchestrator_run_id: str = ""
    feature_shards: tuple[str, ...] = ()  # the image-id shards the features are cut into

    def section(self, name: str) -> dict[str, Any]:
        """A section's values as a plain dict (a copy: the step may not change the record)."""
        return dict(self.settings[name])

    @property
    def key(self) -> str:
        """The partition, for the steps that have one."""
        if self.partition is None:
            raise ValueError("this step is not partitioned")
        return self.partition


@dataclass(frozen=True)
class Meta:
    """A metadata value the UI renders specially: Markdown, a file path, JSON or a link."""

    kind: Literal["md", "path", "json", "url"]
    value: Any


@dataclass(frozen=True)
class CheckOutcome:
    """The verdict of a check on what a step wrote."""

    passed: bool
    metadata: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None


@dataclass
class StepOutcome:
    """What a step wrote: its summary (metrics and metadata), the files whose bytes are its data
    version (or the version itself), extra metadata, and the verdicts of its own checks."""

    summary: Mapping[str, Any]
    files: list[Path] = field(default_factory=list)
    data_version: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    checks: Mapping[str, CheckOutcome] = field(default_factory=dict)
