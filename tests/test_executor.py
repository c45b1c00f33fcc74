"""The code location's runs (launchpad, automation sensor, backfills) fork their steps from a
process that loaded the code once, unless their run config chooses otherwise; a deployment's
executor replaces it."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from geoloc_assets.definitions import build_definitions
from geoloc_assets.runner import PARALLEL_RUN_CONFIG

FORKSERVER = {"forkserver": {}}


def executor_config(root: Path, run_config: dict) -> dict:
    job = build_definitions(root).resolve_implicit_global_asset_job_def()
    resolved = dg.validate_run_config(job, run_config)["execution"]
    (config,) = resolved.values()
    return config


def test_steps_fork_from_a_server_by_default(tiny_world_template: Path):
    config = executor_config(tiny_world_template, {})
    assert config["multiprocess"]["start_method"] == FORKSERVER
    limited = {"execution": {"config": {"multiprocess": {"max_concurrent": 2}}}}
    config = executor_config(tiny_world_template, limited)
    assert config["multiprocess"]["max_concurrent"] == 2
    assert config["multiprocess"]["start_method"] == FORKSERVER


@pytest.mark.parametrize(
    ("execution", "expected"),
    [
        ({"multiprocess": {"start_method": {"spawn": {}}}}, {"start_method": {"spawn": {}}}),
        ({"in_process": {}}, None),
        (PARALLEL_RUN_CONFIG["execution"]["config"], {"start_method": FORKSERVER}),
    ],
    ids=["spawn", "in_process", "parallel"],
)
def test_a_run_config_choice_still_applies(tiny_world_template: Path, execution, expected):
    config = executor_config(tiny_world_template, {"execution": {"config": execution}})
    if expected is None:
        assert "in_process" in config and "multiprocess" not in config
    else:
        assert expected.items() <= config["multiprocess"].items()


def test_a_deployment_swaps_in_its_own_executor(tiny_world_template: Path):
    defs = build_definitions(tiny_world_template, executor=dg.in_process_executor)
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.executor_def.name == dg.in_process_executor.name
