"""The code location's runs (launchpad, automation sensor, backfills) fork their steps from a
process that loaded the code once, unless their run config chooses otherwise; a deployment's
executor replaces it. The forkserver is Python's own, started as Dagster's executor starts it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from geoloc_assets.definitions import build_definitions
from geoloc_assets.runner import PARALLEL_RUN_CONFIG
from tests.conftest import REPO

FORKSERVER = {"forkserver": {"preload_modules": ["geoloc_assets.step_preload"]}}
# A step as the executor forks it: Dagster's executor module, then the configured ones, preloaded
# in a forkserver; the child says where the code location was loaded, and what importing it gives.
FORKED_STEP = """
import json, multiprocessing, os, sys

def step(queue):
    from geoloc_assets import step_preload
    seen = {"pid": os.getpid(), "loaded_in": step_preload.LOADED_IN_PID,
            "preloaded": "geoloc_assets.definitions" in sys.modules, "error": None}
    try:
        import geoloc_assets.definitions
    except Exception as exc:
        seen["error"] = f"{type(exc).__name__}: {exc}"
    queue.put(seen)

if __name__ == "__main__":
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(
        ["dagster._core.executor.multiprocess", *sys.argv[1:]]
    )
    queue = context.Queue()
    seen = []
    for _ in range(2):
        child = context.Process(target=step, args=(queue,))
        child.start()
        seen.append(queue.get(timeout=300))
        child.join()
    print(json.dumps(seen))
"""


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


def preloaded_modules(root: Path) -> list[str]:
    """What the code location's executor has its forkserver preload (none named: none)."""
    forkserver = executor_config(root, {})["multiprocess"]["start_method"]["forkserver"]
    return forkserver.get("preload_modules") or []


def forked_steps(root: Path, tmp_path: Path, preload: list[str]) -> list[dict]:
    """Two steps forked as a run's executor forks them, in the project at root."""
    script = tmp_path / "forked_step.py"
    script.write_text(FORKED_STEP)
    env = {**os.environ, "GEOLOC_ROOT": str(root), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, str(script), *preload],
        cwd=root, env=env, capture_output=True, text=True, timeout=600, check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_each_step_starts_with_the_code_location_loaded_once(tiny_world_template, tmp_path):
    """The forkserver loaded the definitions (its pid, not a step's); both steps inherit them."""
    steps = forked_steps(tiny_world_template, tmp_path, preloaded_modules(tiny_world_template))
    assert [step["error"] for step in steps] == [None, None]
    assert all(step["preloaded"] for step in steps)
    (server,) = {step["loaded_in"] for step in steps}
    assert server is not None and server not in {step["pid"] for step in steps}


def test_a_code_location_that_cannot_load_is_reported_by_the_step(tiny_project, tmp_path):
    """params.yaml broken while a run is under way: the forkserver still forks, and the step's
    own import gives the setting's line (the key), not a broken pipe."""
    preload = preloaded_modules(tiny_project)
    params = tiny_project / "params.yaml"
    params.write_text(params.read_text().replace("eps_km:", "eps_km: -5 #", 1))
    steps = forked_steps(tiny_project, tmp_path, preload)
    assert [step["loaded_in"] for step in steps] == [None, None]
    assert not any(step["preloaded"] for step in steps)
    assert all("eps_km" in (step["error"] or "") for step in steps), steps
