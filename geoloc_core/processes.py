"""This machine's processes as Linux's /proc shows them: parent, start time, command line.

The MLflow run grouping looks for the dvc process a stage descends from, and DVC's locks ask
whether a lock holder is an ancestor and what it runs; both read /proc the same way. Where
/proc is missing every lookup answers None or empty, so callers fall back to "no ancestor".
"""

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

PROC = Path("/proc")
MAX_ANCESTORS = 64


def process_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks since boot) from /proc/<pid>/stat."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name, in parentheses, may hold spaces and ')': the fields follow the last ')'
    fields = text.rsplit(")", 1)[-1].split()
    try:
        return int(fields[1]), int(fields[19])
    except (IndexError, ValueError):
        return None


def command_line(pid: int) -> list[str]:
    """The process's arguments, empty when it is gone or unreadable."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def ancestors(pid: int | None = None) -> Iterator[int]:
    """pid (default: this process's parent) and its ancestors, nearest first, above init."""
    pid = os.getppid() if pid is None else pid
    for _ in range(MAX_ANCESTORS):
        if pid <= 1:
            return
        yield pid
        stat = process_stat(pid)
        if stat is None:
            return
        pid = stat[0]


def started_at(start_ticks: int) -> datetime:
    """The wall-clock time of a process start given in clock ticks since boot."""
    boot = 0.0
    try:
        for line in (PROC / "stat").read_text().splitlines():
            if line.startswith("btime "):
                boot = float(line.split()[1])
    except OSError:
        pass
    return datetime.fromtimestamp(boot + start_ticks / os.sysconf("SC_CLK_TCK"))


def descendants(pid: int) -> dict[int, int]:
    """Every process below pid (children, their children, ...): pid -> start time in clock
    ticks, so a caller can tell a process from a later one that reuses its pid."""
    children: dict[int, list[tuple[int, int]]] = {}
    try:
        entries = [int(name) for name in os.listdir(PROC) if name.isdigit()]
    except OSError:
        return {}
    for entry in entries:
        stat = process_stat(entry)
        if stat is not None:
            children.setdefault(stat[0], []).append((entry, stat[1]))
    found: dict[int, int] = {}
    pending = [pid]
    while pending:
        for child, started in children.get(pending.pop(), []):
            if child not in found:
                found[child] = started
                pending.append(child)
    return found


def alive(pid: int, start_ticks: int) -> bool:
    """Whether the process that started at start_ticks still runs (not a zombie)."""
    stat = process_stat(pid)
    if stat is None or stat[1] != start_ticks:
        return False
    try:
        state = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
