"""Which pipeline run a materialization belongs to: the MLflow parent its run nests under.

`dvc repro` runs each stage as its own `geoloc materialize` process, and each process makes
several Dagster runs, so a parent per Dagster run splits one pipeline run into many. The group
is, first match wins: the DVC experiment (DVC exports DVC_EXP_NAME and DVC_EXP_BASELINE_REV to
every stage command of `dvc exp run`), the `dvc repro` process all stage commands descend from
(DVC exports DVC_ROOT and DVC_STAGE to each), the Dagster backfill, else the Dagster run.
"""

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from geoloc_core.processes import ancestors, command_line, process_stat, started_at

DVC_EXP_NAME = "DVC_EXP_NAME"
DVC_EXP_BASELINE_REV = "DVC_EXP_BASELINE_REV"
DVC_STAGE_ENVS = ("DVC_STAGE", "DVC_ROOT")
BACKFILL_TAG = "dagster/backfill"


@dataclass(frozen=True)
class DvcProcess:
    """The dvc process that runs the stages: pid plus start time, as pids are reused."""

    pid: int
    start_ticks: int
    started: datetime

    @property
    def id(self) -> str:
        return f"{socket.gethostname()}:{self.pid}:{self.start_ticks}"


@dataclass(frozen=True)
class RunGroup:
    key: str
    kind: str
    name: str
    tags: Mapping[str, str] = field(default_factory=dict)


def run_group(
    dagster_run_id: str,
    dagster_tags: Mapping[str, str],
    env: Mapping[str, str] | None = None,
    dvc: DvcProcess | None = None,
) -> RunGroup:
    """The group of this materialization (env and the dvc process default to this process's)."""
    env = os.environ if env is None else env
    if dvc is None and any(name in env for name in DVC_STAGE_ENVS):
        dvc = dvc_ancestor()
    if env.get(DVC_EXP_NAME):
        return _dvc_experiment(env[DVC_EXP_NAME], env.get(DVC_EXP_BASELINE_REV, ""), dvc)
    if dvc is not None:
        return _dvc_repro(dvc)
    backfill = dagster_tags.get(BACKFILL_TAG)
    if backfill:
        tags = {"dagster.backfill": backfill}
        return RunGroup(f"backfill:{backfill}", "backfill", f"backfill {backfill}", tags)
    return RunGroup(
        f"dagster-run:{dagster_run_id}",
        "dagster-run",
        f"dagster run {dagster_run_id[:8]}",
        {"dagster.run_id": dagster_run_id},
    )


def _dvc_experiment(name: str, baseline: str, dvc: DvcProcess | None) -> RunGroup:
    # the process id keeps a re-run under the same name (`dvc exp run -n x -f`) apart
    key = ":".join(p for p in ("dvc-exp", name, baseline[:12], dvc.id if dvc else "") if p)
    tags = {"dvc.exp_name": name, "dvc.baseline_rev": baseline}
    return RunGroup(key, "dvc-exp", f"dvc exp {name}", tags)


def _dvc_repro(dvc: DvcProcess) -> RunGroup:
    started = dvc.started.strftime("%Y-%m-%d %H:%M:%S")
    tags = {"dvc.pid": str(dvc.pid)}
    return RunGroup(f"dvc-repro:{dvc.id}", "dvc-repro", f"dvc repro {started}", tags)


def dvc_ancestor(pid: int | None = None) -> DvcProcess | None:
    """The nearest ancestor process that is dvc (Linux /proc; None elsewhere or if none)."""
    for ancestor in ancestors(pid):
        stat = process_stat(ancestor)
        if stat is None:
            return None
        if is_dvc_command(command_line(ancestor)):
            return DvcProcess(ancestor, stat[1], started_at(stat[1]))
    return None


def is_dvc_command(argv: list[str]) -> bool:
    """`dvc ...`, `python .../bin/dvc ...` or `python -m dvc ...`."""
    if argv[1:3] == ["-m", "dvc"]:
        return True
    return any(Path(arg).name in ("dvc", "dvc.exe") for arg in argv[:2])
