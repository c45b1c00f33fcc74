"""A real SIGKILL of the stage mid-run, in a subprocess, against the local server: every answer
that arrived before the kill is on disk, and the rerun sends only the unanswered requests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from geoloc_core.lmm.cache import JsonRecordCache
from geoloc_core.lmm.settings import LmmSettings
from geoloc_core.lmm.test_server import LmmTestServer
from geoloc_core.steps.lmm import lmm_answers_path, run_lmm_stage
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
CONCURRENCY = 2


def wait_for_requests(server: LmmTestServer, count: int, child: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while server.stats()["requests"] < count:
        assert child.poll() is None, "the stage finished or died before it could be killed"
        assert time.monotonic() < deadline, "the stage never reached the server"
        time.sleep(0.01)


def test_sigkill_mid_run_loses_no_answer_and_the_rerun_sends_only_the_rest(tmp_path):
    paths = make_project(tmp_path / "project", queries=8, per_kind=10)
    prompts = 8 * 3
    with LmmTestServer(latency_s=0.15) as server:
        section = stage_section(server, g3_rag_sizes=[0, 5, 10], n=1, max_concurrency=CONCURRENCY)
        config = tmp_path / "config.json"
        config.write_text(
            json.dumps({"root": str(paths.root), "benchmark": BENCHMARK, "section": section})
        )
        env = os.environ | {"PYTHONPATH": str(REPO), KEY_ENV: STAGE_KEY}
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(config)], cwd=REPO, env=env)
        try:
            wait_for_requests(server, 7, child)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL
        time.sleep(0.3)  # let the server finish the requests the dead client left behind
        sent_before = server.stats()["requests"]
        cache = JsonRecordCache(LmmSettings.from_section(section).cache_path(paths.root))
        cached = cache.count()
        assert 0 < cached < prompts
        assert sent_before - CONCURRENCY <= cached <= sent_before  # only in-flight ones lost
        assert not lmm_answers_path(paths, BENCHMARK).exists()  # written only at the end
        cache_files = list(cache.cache_dir.glob("??/*.json"))
        assert all(cache.get(f.stem) is not None for f in cache_files)  # none torn

        server.latency_s = 0.0
        summary = run_lmm_stage(paths, BENCHMARK, section, progress=False, log=quiet)
        resent = server.stats()["requests"] - sent_before
    assert resent == summary["requests_sent"] == prompts - cached
    assert summary["cache_hits"] == cached
    assert summary["answers_kept"] == prompts and summary["prompts_complete"] == prompts
    assert len(read_answers(paths)) == prompts
