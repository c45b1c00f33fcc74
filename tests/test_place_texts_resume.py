"""Place texts described by an LMM, SIGKILLed mid-run at a fixed point (after the 5th cached
answer, geoloc_core/kill_point.py): every answer that arrived stays cached, no place-texts file
is left behind, the rerun asks only for the rest, and its file equals an unbroken run's."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from geoloc_core.kill_point import MARKER_ENV, POINT_ENV
from geoloc_core.lmm.cache import JsonRecordCache
from geoloc_core.paths import ProjectPaths
from geoloc_core.steps.texts import build_place_texts
from geoloc_core.text.settings import TextSettings
from tests.conftest import REPO
from tests.test_text_lmm import (  # noqa: F401  (api_key is an autouse fixture)
    FakeLmmServer,
    api_key,
    openai_text_params,
)

CHILD = """
import json, sys
from pathlib import Path
from geoloc_core.paths import ProjectPaths
from geoloc_core.steps.texts import build_place_texts
config = json.loads(Path(sys.argv[1]).read_text())
build_place_texts(ProjectPaths(Path(config["root"])), config["text"])
"""
KILL_AT = 5


def project_copy(template: Path, target: Path) -> ProjectPaths:
    shutil.copytree(template, target, ignore=shutil.ignore_patterns(".dagster"))
    paths = ProjectPaths(target)
    paths.place_texts.unlink()  # the template's offline texts: this run writes its own
    return paths


def kill_after_cached_answers(config: Path, marker: Path) -> None:
    env = os.environ | {  # the key: the api_key fixture's, in the environment only
        "PYTHONPATH": str(REPO),
        POINT_ENV: f"place-text-cached:{KILL_AT}",
        MARKER_ENV: str(marker),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(config)], cwd=REPO, env=env, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    try:
        while not marker.exists():
            if child.poll() is not None:
                raise AssertionError(f"ended before its kill point: {child.stderr.read()[-2000:]}")
            assert time.monotonic() < deadline, "place texts never reached the kill point"
            time.sleep(0.01)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


def test_sigkill_keeps_cached_descriptions_and_the_rerun_asks_only_for_the_rest(
    materialized_template, tmp_path
):
    paths = project_copy(materialized_template, tmp_path / "project")
    straight = project_copy(materialized_template, tmp_path / "straight")
    with FakeLmmServer() as server:
        # one request at a time, so exactly KILL_AT answers are cached when the kill lands
        text = openai_text_params(server, lmm_max_concurrency=1, caption_from="description")
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"root": str(paths.root), "text": text}))
        kill_after_cached_answers(config, tmp_path / "killed-here")
        assert len(server.requests) == KILL_AT
        cache = JsonRecordCache(TextSettings.from_section(text).lmm_settings(paths.root).cache_dir)
        assert cache.count() == KILL_AT
        assert not paths.place_texts.exists()  # written once, at the end
        assert not list(paths.place_texts.parent.glob("*.tmp"))

        resumed = build_place_texts(paths, text | {"lmm_max_concurrency": 2})
        sent_on_resume = len(server.requests) - KILL_AT
        unbroken = build_place_texts(straight, text | {"lmm_max_concurrency": 2})
        distinct = len(server.requests) - KILL_AT - sent_on_resume
    assert unbroken["lmm_requests"] == distinct > KILL_AT
    assert resumed["lmm_requests"] == sent_on_resume == distinct - KILL_AT
    assert cache.count() == distinct
    resumed_bytes = paths.place_texts.read_bytes()
    assert resumed_bytes == straight.place_texts.read_bytes()
    assert b"Seen: " in resumed_bytes  # the captions are the LMM's descriptions
