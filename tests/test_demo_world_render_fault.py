"""A demo-world render process that dies fails the world with what to do, instead of hanging;
a view that cannot be rendered fails it with the worker's traceback.

multiprocessing.Pool waited for ever on the chunk of a worker that died, and
ProcessPoolExecutor's shutdown hung for 120 s in one CI run (render_pool.py says why). The
generator runs in a process of its own here, so that the render workers are that process's
children and nothing of this test's process (or of a pytest-xdist worker) is inherited by them:
every render worker stops at its first chunk (a kill point), the test kills one, and the
generator must end within a bound, non-zero, naming the cause and the command, with no manifest
written and no render worker left.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from geoloc_core.demo_world.render_pool import RenderFailed, render_in_processes
from geoloc_core.kill_point import MARKER_ENV, POINT_ENV
from geoloc_core.processes import alive, command_line, descendants

DEADLINE_S = 120.0
GENERATE = """
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from geoloc_core.demo_world.generate import DemoWorldConfig, generate_demo_world
config = DemoWorldConfig(seed=7, image_size=32, reference_sites=12, reference_views=2,
    validation_views=1, street_sites=4, street_views=2, unseen_sites=4, unseen_views=2,
    workers=2)
generate_demo_world(Path(sys.argv[1]), config, progress=False)
"""


def render_workers(pid: int) -> dict[int, int]:
    """The generator's render processes (multiprocessing's spawn children), with their start
    times (a later process may reuse a pid)."""
    return {
        child: started
        for child, started in descendants(pid).items()
        if any("spawn_main" in part for part in command_line(child))
    }


def test_a_render_worker_that_dies_fails_the_world_instead_of_hanging(tmp_path: Path):
    marker = tmp_path / "a-worker-reached-its-first-chunk"
    out = tmp_path / "world"
    env = {**os.environ, POINT_ENV: "demo-world-chunk:1", MARKER_ENV: str(marker)}
    generator = subprocess.Popen(
        [sys.executable, "-c", GENERATE, str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its whole tree can be stopped if it hangs after all
    )
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not marker.exists():
            assert generator.poll() is None, generator.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "no render worker reached its first chunk"
            time.sleep(0.05)
        workers = render_workers(generator.pid)
        assert workers, "a worker reached its first chunk, so one is running"
        os.kill(next(iter(workers)), signal.SIGKILL)
        output, _ = generator.communicate(timeout=DEADLINE_S)
    finally:
        if generator.poll() is None:
            os.killpg(generator.pid, signal.SIGKILL)
            generator.wait()
    assert generator.returncode != 0
    assert "a demo-world render process died" in output, output[-3000:]
    assert "run `geoloc demo-world` again" in output
    assert not (out / "manifest.csv").exists()
    # the generator killed the other render process too: nothing is left waiting
    assert [pid for pid, started in workers.items() if alive(pid, started)] == []


def test_a_view_that_cannot_be_rendered_fails_with_the_workers_traceback(tmp_path: Path):
    site_without_scene = SimpleNamespace(site_id=99)
    finished: list[int] = []
    with pytest.raises(RenderFailed, match=r"(?s)a render process failed:.*KeyError: 99"):
        render_in_processes(
            [[site_without_scene]] * 3, 2, ({}, tmp_path, 32), finished.append
        )
    assert finished == []
    assert multiprocessing.active_children() == []


def test_every_chunk_is_counted_once_and_the_workers_end(tmp_path: Path):
    """More chunks than workers, fewer chunks than workers: each chunk's views counted once."""
    for chunks, workers in (([[], [], [], [], []], 2), ([[]], 3)):
        finished: list[int] = []
        render_in_processes(chunks, workers, ({}, tmp_path, 32), finished.append)
        assert finished == [0] * len(chunks)
        assert multiprocessing.active_children() == []
