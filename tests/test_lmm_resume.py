"""A real SIGKILL of the stage mid-run, in a subprocess, against the local server, at a fixed
point (after its 7th cached answer, geoloc_core/kill_point.py): every answer that arrived is on
disk, the rerun sends only the unanswered requests, and the answers equal an unbroken run's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from geoloc_core.kill_point import MARKER_ENV, POINT_ENV
from geoloc_core.lmm.cache import JsonRecordCache
from geoloc_core.lmm.settings import LmmSettings
from geoloc_core.lmm.stub_server import LmmStubServer
from geoloc_core.steps.lmm import run_lmm_stage
from tests.conftest import REPO
from tests.test_lmm_stage import (  # noqa: F401  (api_key is an autouse fixture)
    BENCHMARK,
    KEY_ENV,
    STAGE_KEY,
    api_key,
    make_project,
    quiet,
    read_answers,
    stage_section,
)

CHILD = """
import json, sys
from pathlib import Path
from geoloc_core.paths import ProjectPaths
from geoloc_core.steps.lmm import run_lmm_stage
config = json.loads(Path(sys.argv[1]).read_text())
run_lmm_stage(ProjectPaths(Path(config["root"])), config["benchmark"], config["section"],
              progress=False, log=lambda line: None)
"""
KILL_AT = 7  # the child stops for good once it has cached this many answers


def wait_for_marker(marker: Path, child: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None, "the stage finished or died before its kill point"
        assert time.monotonic() < deadline, "the stage never reached its kill point"
        time.sleep(0.01)


def test_sigkill_mid_run_loses_no_answer_and_the_rerun_sends_only_the_rest(tmp_path):
    paths = make_project(tmp_path / "project", queries=8, per_kind=10)
    straight = make_project(tmp_path / "straight", queries=8, per_kind=10)
    prompts = 8 * 3
    with LmmStubServer() as server:
        # one request at a time until the kill, so exactly KILL_AT answers are cached by then
        section = stage_section(server, g3_rag_sizes=[0, 5, 10], n=1, max_concurrency=1)
        config = tmp_path / "config.json"
        config.write_text(
            json.dumps({"root": str(paths.root), "benchmark": BENCHMARK, "section": section})
        )
        marker = tmp_path / "killed-here"
        env = os.environ | {
            "PYTHONPATH": str(REPO),
            KEY_ENV: STAGE_KEY,
            POINT_ENV: f"lmm-answer-cached:{KILL_AT}",
            MARKER_ENV: str(marker),
        }
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(config)], cwd=REPO, env=env)
        try:
            wait_for_marker(marker, child)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL
        sent_before = server.stats()["requests"]
        assert sent_before == KILL_AT
        cache = JsonRecordCache(LmmSettings.from_section(section).cache_path(paths.root))
        assert cache.count() == KILL_AT
        assert not paths.lmm_answers(BENCHMARK).exists()  # written only at the end
        cache_files = list(cache.cache_dir.glob("??/*.json"))
        assert all(cache.get(f.stem) is not None for f in cache_files)  # none torn

        resumed_section = section | {"max_concurrency": 2}
        summary = run_lmm_stage(paths, BENCHMARK, resumed_section, progress=False, log=quiet)
        resent = server.stats()["requests"] - sent_before
        straight_section = stage_section(server, g3_rag_sizes=[0, 5, 10], n=1, max_concurrency=2)
        run_lmm_stage(straight, BENCHMARK, straight_section, progress=False, log=quiet)
    assert resent == summary["requests_sent"] == prompts - KILL_AT
    assert summary["cache_hits"] == KILL_AT
    assert summary["answers_kept"] == prompts and summary["prompts_complete"] == prompts
    assert len(read_answers(paths)) == prompts
    # the interrupted run's answers are those of a run that was never interrupted
    resumed_bytes = paths.lmm_answers(BENCHMARK).read_bytes()
    assert resumed_bytes == straight.lmm_answers(BENCHMARK).read_bytes()
