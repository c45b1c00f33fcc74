"""A named point where a fault-injection test can stop a run for good, so that its SIGKILL lands
at a known step rather than after a guessed sleep.

Unset in real runs. A test sets GEOLOC_TEST_KILL_POINT to "<name>:<n>" and
GEOLOC_TEST_KILL_MARKER to a file path; the n-th time this process reaches `kill_point(name)`,
it creates the marker file and waits there until it is killed.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

POINT_ENV = "GEOLOC_TEST_KILL_POINT"
MARKER_ENV = "GEOLOC_TEST_KILL_MARKER"
_reached: Counter[str] = Counter()


def kill_point(name: str) -> None:
    """Wait here to be killed when a test asked for this point (a no-op otherwise)."""
    wanted = os.environ.get(POINT_ENV)
    if not wanted:
        return
    point, _, count = wanted.rpartition(":")
    if point != name:
        return
    _reached[name] += 1
    if _reached[name] != int(count):
        return
    Path(os.environ[MARKER_ENV]).touch()
    while True:
        time.sleep(60)
