"""Refuse a run whose config the settings tree refuses, before it is queued.

Dagster's config schema has no ranges, so the launchpad's own check accepts `eps_km: -5`; the
assets' Config would refuse it, but only once the run has started. The instance's run
coordinator sees every run before it is queued (the launchpad, `geoloc materialize`, the
automation sensor, backfills): this one checks each asset's section config with the section
models, and refuses the run with params.yaml's own line. Dagster then marks the run failed
without starting it, and the launchpad shows the line in its error dialog.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster._core.run_coordinator import SubmitRunContext
from dagster._core.run_coordinator.queued_run_coordinator import QueuedRunCoordinator
from dagster._core.storage.dagster_run import DagsterRun

from geoloc_core.params import ParamsError, find_root, load_params, section
from geoloc_core.pipeline.registry import STAGES
from geoloc_core.settings_tree import SECTIONS

# what project_instance writes into a new instance's dagster.yaml
RUN_COORDINATOR_CONFIG = {
    "module": __name__,
    "class": "SettingsCheckedRunCoordinator",
}


class RunRefused(Exception):
    """A run config value the settings tree refuses; the message is params.yaml's line."""


def run_config_refusal(run_config: Mapping[str, Any], params: Mapping[str, Any]) -> str | None:
    """The line params.yaml's check gives for the first refused section config of any step in
    the run config, None when every value passes (sections missing from it keep params.yaml's)."""
    steps = {stage.name: set(stage.sections) for stage in STAGES}
    for op_name, op_config in (run_config.get("ops") or {}).items():
        sections = (op_config or {}).get("config") or {}
        for name, values in sections.items():
            known = name in steps.get(op_name, ())
            if not known or not isinstance(values, Mapping):
                continue  # Dagster's own schema check refuses these, naming the path
            try:
                SECTIONS[name].from_section({**section(params, name), **values})
            except ValueError as exc:  # ParamsError, or the section's own error type
                return str(exc)
    return None


class SettingsCheckedRunCoordinator(QueuedRunCoordinator):
    """Dagster's queued coordinator, after the settings tree's check of the run config."""

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        run = context.dagster_run
        if run.run_config:
            try:
                params = load_params(find_root())
            except ParamsError:
                params = None  # the code location refuses a bad params.yaml itself
            refusal = run_config_refusal(run.run_config, params) if params else None
            if refusal is not None:
                raise RunRefused(refusal)
        return super().submit_run(context)
