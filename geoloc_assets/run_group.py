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

DVC_EXP_NAME = "DVC_EXP_NAME"
DVC_EXP_BASELINE_REV = "DVC_EXP_BASELINE_REV"
DVC_STAGE_ENVS = ("DVC_STAGE", "DVC_ROOT")
BACKFILL_TAG = "dagster/backfill"
MAX_ANCESTORS = 64
PROC = Path("/proc")


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
    pid = os.getppid() if pid is None else pid
    for _ in range(MAX_ANCESTORS):
        if pid <= 1:
            return None
        stat = _stat(pid)
        if stat is None:
            return None
        parent, start_ticks = stat
        if is_dvc_command(_cmdline(pid)):
            return DvcProcess(pid, start_ticks, _started(start_ticks))
        pid = parent
    return None


def is_dvc_command(argv: list[str]) -> bool:
    """`dvc ...`, `python .../bin/dvc ...` or `python -m dvc ...`."""
    if argv[1:3] == ["-m", "dvc"]:
        return True
    return any(Path(arg).name in ("dvc", "dvc.exe") for arg in argv[:2])


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks since boot) from /proc/<pid>/stat."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name, in parentheses, may hold spaces: the fields follow the last ')'
    fields = text.rsplit(")", 1)[-1].split()
    try:
        return int(fields[1]), int(fields[19])
    except (IndexError, ValueError):
        return None


def _cmdline(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _started(start_ticks: int) -> datetime:
    boot = 0.0
    try:
        for line in (PROC / "stat").read_text().splitlines():
            if line.startswith("btime "):
                boot = float(line.split()[1])
    except OSError:
        pass
    return datetime.fromtimestamp(boot + start_ticks / os.sysconf("SC_CLK_TCK"))
