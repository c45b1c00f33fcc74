"""DVC's locks, shared with `geoloc` commands started by hand, so that such a command and a
`dvc repro` in the same project never write the same outputs at once.

DVC (3.x, dvc/lock.py and dvc/rwlock.py) keeps two locks in <repo>/.dvc/tmp:

- `lock`: an exclusive flock, held by every dvc command while it works on the repository
  (the file keeps the last holder's pid as text). DVC releases it while a stage's command runs.
- `rwlock`: JSON, {"write": {path: {"pid", "cmd"}}, "read": {path: [{"pid", "cmd"}, ...]}},
  absolute paths. `dvc repro` enters each stage's deps as read and its outs as read and write
  for as long as the stage runs, its command included; a writer waits for every writer and
  reader of an overlapping path, a reader for every writer. The file is edited only under the
  flock of `rwlock.lock`. An entry whose pid no longer exists is stale: DVC drops it and goes on.

A geoloc command that a DVC stage runs finds its own dvc ancestor in `rwlock` and goes ahead:
DVC holds the locks for it. (DVC_ROOT and DVC_STAGE are no proof: whatever a stage starts
inherits them, also what outlives the stage.) One started by hand refuses while DVC holds
`lock` or a live entry on what it writes, and otherwise enters itself as their writer until it
ends, so that `dvc repro` stops with DVC's own "is busy" error.

`rwlock` records one writer per path, so two hand-started geoloc commands (which may run at once:
the Dagster instance and the MLflow store serialize them) cannot both be its writer: the
second enters itself as a reader of that path instead, which DVC's writers wait for just as well.

Only DVC's default flock locks are shared; with `core.hardlink_lock` set, a hand-started geoloc
command refuses (Linux: ancestors come from /proc).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from geoloc_core.processes import ancestors, command_line

DVC_DIR = ".dvc"
REPO_LOCK = "lock"
RWLOCK = "rwlock"
RWLOCK_GUARD = "rwlock.lock"
DVC_CONFIGS = ("config", "config.local")
# how geoloc's own entries are told from DVC's: DVC's cmd is its argv, which starts with dvc
GEOLOC_CMD = "geoloc"
# DVC gives up on rwlock.lock after about 3 s; it holds it only while it edits the file
GUARD_WAIT_SECONDS = 3.0
GUARD_POLL_SECONDS = 0.05

Lock = dict[str, dict[str, Any]]
Entry = tuple[str, str]  # (mode: "write" or "read", path)


class DvcLockError(RuntimeError):
    """DVC is busy with this project, or its lock files cannot be shared: one line, with what
    to do."""


def find_dvc_root(start: Path) -> Path | None:
    """The DVC repository that start lies in (the nearest folder upwards holding .dvc/, not
    past a mount point, as DVC looks for it), or None."""
    folder = Path(start).resolve()
    while True:
        if (folder / DVC_DIR).is_dir():
            return folder
        if os.path.ismount(folder) or folder.parent == folder:
            return None
        folder = folder.parent


@contextlib.contextmanager
def dvc_write_lock(
    root: Path, paths: Sequence[Path], argv: Sequence[str] | None = None
) -> Iterator[None]:
    """Hold DVC's write lock on paths (what a hand-started geoloc command writes) while the
    block runs; raise DvcLockError first if DVC is busy with them. Nothing to do outside a DVC
    repository, or when a DVC stage runs this process (DVC holds the locks already)."""
    dvc_root = find_dvc_root(root)
    if dvc_root is None:
        yield
        return
    tmp = dvc_root / DVC_DIR / "tmp"
    tmp.mkdir(exist_ok=True)  # as every dvc command does on start
    info = {"pid": os.getpid(), "cmd": _command(sys.argv if argv is None else argv)}
    wanted = [os.path.normpath(Path(p).resolve()) for p in paths]
    with _guard(tmp):
        lock = _load(tmp / RWLOCK)
        if _run_by_dvc(lock):
            entered: list[Entry] = []
        else:
            _refuse_if_hardlink_lock(dvc_root)
            _refuse_if_busy(dvc_root, tmp, lock, wanted)
            entered = _enter(lock, info, wanted)
            _save(tmp / RWLOCK, lock)
    try:
        yield
    finally:
        if entered:
            with _guard(tmp):
                lock = _load(tmp / RWLOCK)
                _leave(lock, info, entered)
                _save(tmp / RWLOCK, lock)


def _command(argv: Sequence[str]) -> str:
    """What DVC shows for this process when it is blocked by it: `geoloc <arguments>`."""
    return " ".join([GEOLOC_CMD, *argv[1:]]).replace("\n", " ")


@contextlib.contextmanager
def _guard(tmp: Path) -> Iterator[None]:
    """rwlock.lock, the flock every editor of rwlock holds, tried for as long as DVC tries."""
    fd = os.open(tmp / RWLOCK_GUARD, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + GUARD_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DvcLockError(
                        f"could not lock {tmp / RWLOCK_GUARD} within {GUARD_WAIT_SECONDS:.0f} s:"
                        " another dvc process is editing its locks; run this again"
                    ) from None
                time.sleep(GUARD_POLL_SECONDS)
        os.ftruncate(fd, 0)  # the holder's pid, as DVC writes it
        os.write(fd, f" {os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _load(path: Path) -> Lock:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raw = {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DvcLockError(
            f"{path} is not valid JSON (DVC cannot read it either); if no dvc process is "
            "running, remove it and run this again"
        ) from exc
    if not isinstance(raw, dict) or not all(
        isinstance(raw.get(mode, {}), dict) for mode in ("write", "read")
    ):
        raise DvcLockError(f"{path} is not in DVC's rwlock format; if no dvc process is running,"
                           " remove it and run this again")
    return {"write": dict(raw.get("write", {})), "read": dict(raw.get("read", {}))}


def _save(path: Path, lock: Lock) -> None:
    """Write rwlock whole, then move it in place, leaving out empty sections as DVC does."""
    kept = {mode: entries for mode, entries in lock.items() if entries}
    part = path.with_name(f"{path.name}.geoloc-{os.getpid()}")
    part.write_text(json.dumps(kept), encoding="utf-8")
    os.replace(part, path)


def _run_by_dvc(lock: Lock) -> bool:
    """Whether a process with entries in rwlock is an ancestor of this one: the dvc process
    whose stage this is (or a geoloc command that started this one), which holds the locks."""
    above = set(ancestors())
    return any(info.get("pid") in above for _, _, info in _entries(lock))


def _entries(lock: Lock) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every (mode, path, {"pid", "cmd"}) in rwlock."""
    for path, info in lock["write"].items():
        yield "write", path, info
    for path, infos in lock["read"].items():
        for info in infos:
            yield "read", path, info


def _refuse_if_hardlink_lock(dvc_root: Path) -> None:
    """With core.hardlink_lock DVC guards its files with flufl.lock's hard links, which these
    flocks do not exclude: refuse rather than edit rwlock beside DVC."""
    setting = re.compile(r"^\s*hardlink_lock\s*=\s*(true|yes|1)\s*$", re.IGNORECASE)
    for name in DVC_CONFIGS:
        try:
            lines = (dvc_root / DVC_DIR / name).read_text().splitlines()
        except OSError:
            continue
        section = ""
        for line in lines:
            if line.strip().startswith("["):
                section = line.strip().strip("[]").strip().strip("'\"")
            elif section == "core" and setting.match(line):
                raise DvcLockError(
                    f"{DVC_DIR}/{name} sets core.hardlink_lock, whose locks geoloc cannot "
                    "share: run this through `dvc repro`, or unset it"
                )


def _refuse_if_busy(dvc_root: Path, tmp: Path, lock: Lock, wanted: Sequence[str]) -> None:
    """Raise DvcLockError naming the dvc process that holds the repository lock, or a live
    entry on an overlapping path; drop the entries of dead processes, as DVC does."""
    for mode, path, info in list(_entries(lock)):
        if not any(_overlaps(path, mine) for mine in wanted):
            continue
        if not _alive(info.get("pid")):
            _remove(lock, mode, path, info)
            continue
        if str(info.get("cmd", "")).split(" ", 1)[0] == GEOLOC_CMD:
            continue  # another hand-started geoloc: both may run, both keep DVC out
        where = os.path.relpath(path, dvc_root)
        raise DvcLockError(
            f"DVC is busy with this project: PID {info.get('pid')} ({info.get('cmd')}) "
            f"{'writes' if mode == 'write' else 'reads'} {where} ({DVC_DIR}/tmp/{RWLOCK}); "
            "wait for it to finish, then run this again"
        )
    holder = _repo_lock_holder(tmp / REPO_LOCK)
    if holder is not None:
        pid, cmd = holder
        raise DvcLockError(
            f"DVC is busy with this project: PID {pid} ({cmd}) holds the repository lock "
            f"({DVC_DIR}/tmp/{REPO_LOCK}); wait for it to finish, then run this again"
        )


def _repo_lock_holder(path: Path) -> tuple[int, str] | None:
    """(pid, command) of the dvc process holding the repository lock, else None. Its file
    outlives the lock, pid included, so only a flock that fails says someone holds it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 64).decode(errors="replace").strip()
            pid = int(text) if text.isdigit() else 0
            return pid, _cmdline(pid) or "command unknown"
        return None
    finally:
        os.close(fd)


def _cmdline(pid: int) -> str:
    return " ".join(" ".join(command_line(pid)).split())  # one line


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _overlaps(one: str, other: str) -> bool:
    """The same path, or one inside the other (DVC's test of two lock entries)."""
    return one == other or one.startswith(other.rstrip(os.sep) + os.sep) or other.startswith(
        one.rstrip(os.sep) + os.sep
    )


def _enter(lock: Lock, info: dict[str, Any], wanted: Sequence[str]) -> list[Entry]:
    """Become the writer of each path, or one of its readers where another geoloc is."""
    entered: list[Entry] = []
    for path in wanted:
        if path in lock["write"] and lock["write"][path] != info:
            lock["read"].setdefault(path, [])
            if info not in lock["read"][path]:
                lock["read"][path].append(info)
                entered.append(("read", path))
        elif path not in lock["write"]:
            lock["write"][path] = info
            entered.append(("write", path))
    return entered


def _leave(lock: Lock, info: dict[str, Any], entered: Sequence[Entry]) -> None:
    for mode, path in entered:
        _remove(lock, mode, path, info)


def _remove(lock: Lock, mode: str, path: str, info: dict[str, Any]) -> None:
    if mode == "write":
        if lock["write"].get(path) == info:
            del lock["write"][path]
        return
    readers = lock["read"].get(path, [])
    if info in readers:
        readers.remove(info)
    if not readers:
        lock["read"].pop(path, None)
