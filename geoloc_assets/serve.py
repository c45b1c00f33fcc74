"""`geoloc serve -- COMMAND`: run a server (dagster dev, mlflow server) that stops when asked.

On SIGINT or SIGTERM `dagster dev` waits up to 60 s for each of its children, and its code
servers and run workers outlive it, so Ctrl-C on `make ui` left processes behind for over a
minute. Here the command runs in a session of its own; a signal to this process goes to that
whole group, and what is left of the group, or of anything it started (even in a new session),
after a grace period is killed. Nothing is left once this process has returned.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from types import FrameType

from geoloc_core.processes import alive, descendants

STOP_GRACE_ENV = "GEOLOC_STOP_GRACE_S"
# what the command gets to stop by itself; the whole stop stays within 10 s
DEFAULT_GRACE_S = 5.0
# how often the process tree is recorded (a process whose parent died is found by its pid)
TRACK_S = 1.0
STOP_POLL_S = 0.1
STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def grace_seconds() -> float:
    value = os.environ.get(STOP_GRACE_ENV, "")
    try:
        return float(value) if value else DEFAULT_GRACE_S
    except ValueError:
        raise ValueError(f"{STOP_GRACE_ENV}={value!r}: must be a number of seconds") from None


class Supervisor:
    """One command in its own process group, every process below it recorded as it runs."""

    def __init__(self, command: Sequence[str], grace_s: float) -> None:
        self.command = list(command)
        self.grace_s = grace_s
        self.received: int | None = None
        self.seen: dict[int, int] = {}  # pid -> start ticks
        self.process: subprocess.Popen | None = None

    def run(self) -> int:
        for number in STOPPING:
            signal.signal(number, self._on_signal)
        self.process = subprocess.Popen(self.command, start_new_session=True)
        while self.received is None and self.process.poll() is None:
            self.seen.update(descendants(self.process.pid))
            time.sleep(TRACK_S)
        self.stop(self.received or signal.SIGTERM)
        code = self.process.wait()
        return 128 + self.received if self.received is not None else code

    def _on_signal(self, number: int, _frame: FrameType | None) -> None:
        if self.received is None:
            self.received = number

    def stop(self, number: int) -> None:
        """Pass the signal to the group; after the grace period, kill whatever is left."""
        assert self.process is not None
        self.seen.update(descendants(self.process.pid))
        self._signal_group(number)
        deadline = time.monotonic() + self.grace_s
        while time.monotonic() < deadline and self._left():
            self.seen.update(descendants(self.process.pid))
            time.sleep(STOP_POLL_S)
            self.process.poll()
        self._signal_group(signal.SIGKILL)
        for pid in self._left():
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _left(self) -> list[int]:
        tracked = [pid for pid, started in self.seen.items() if alive(pid, started)]
        return tracked if self.process.poll() is not None else [self.process.pid, *tracked]

    def _signal_group(self, number: int) -> None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, number)


def serve(command: Sequence[str], root: Path, reload_url: str | None = None) -> int:
    """Run the command until it exits or a stop signal comes; with reload_url, reload the
    Dagster webserver's code location there when params.yaml or the code changes."""
    if not command:
        raise ValueError("geoloc serve: no command given (geoloc serve [...] -- COMMAND ...)")
    watcher = None
    if reload_url:
        from geoloc_assets.reload_watch import ReloadWatcher

        watcher = ReloadWatcher(root, reload_url, say=lambda line: print(line, flush=True))
        watcher.start()
    try:
        return Supervisor(command, grace_seconds()).run()
    finally:
        if watcher is not None:
            watcher.stop()
