"""Killing a shard mid-way (SIGKILL, no clean-up) loses nothing: the re-run computes only the
batches that had no finished part file, and the shard equals a from-scratch run byte for byte."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from geoloc_core.segmentation.settings import SegmentationSettings
from geoloc_core.segmentation.shard import compute_shard
from geoloc_core.segmentation.shardfile import read_rows
from geoloc_core.segmentation.worklist import shard_items
from tests.conftest import REPO
from tests.test_segmentation_shards import (
    BENCHMARKS,
    CountingProvider,
    segmentation_section,
    with_manifests,
)

CHILD = """
import json, sys, time
from pathlib import Path
from geoloc_core.paths import ProjectPaths
from geoloc_core.segmentation.providers.demo import DemoProvider
from geoloc_core.segmentation.settings import SegmentationSettings
from geoloc_core.segmentation.shard import compute_shard
from geoloc_core.segmentation.worklist import shard_items

root, cache_dir, parts_dir, calls = (Path(a) for a in sys.argv[1:5])
section, benchmarks = json.loads(sys.argv[5]), json.loads(sys.argv[6])
settings = SegmentationSettings.from_section(section)


class SlowProvider(DemoProvider):
    def predict(self, items):
        with open(calls, "a") as log:
            log.write(json.dumps([item.id for item in items]) + "\\n")
        time.sleep(0.15)
        return super().predict(items)


items = shard_items(ProjectPaths(root), benchmarks, settings.n_shards, 0)
compute_shard(items, settings, 0, cache_dir, parts_dir, SlowProvider, log=lambda m: None)
"""


def wait_for_parts(parts_dir: Path, count: int, child: subprocess.Popen) -> list[Path]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        parts = sorted(parts_dir.rglob("part-*.npz"))
        if len(parts) >= count:
            return parts
        assert child.poll() is None, "the child ended before it could be killed"
        time.sleep(0.01)
    raise AssertionError(f"no {count} part files in {parts_dir} within 60 s")


def test_killed_shard_resumes_and_equals_a_fresh_run(tiny_project, tmp_path):
    paths = with_manifests(tiny_project)
    section = segmentation_section(batch_size=3)
    settings = SegmentationSettings.from_section(section)
    cache_dir, parts_dir = tmp_path / "cache", tmp_path / "parts"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    calls = tmp_path / "calls.jsonl"
    args = [str(a) for a in (tiny_project, cache_dir, parts_dir, calls)]
    child = subprocess.Popen(
        [sys.executable, str(script), *args, json.dumps(section), json.dumps(BENCHMARKS)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        wait_for_parts(parts_dir, 3, child)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not list(cache_dir.glob("shard-*.npz")), "killed before the shard was assembled"
    finished = {i for part in parts_dir.rglob("part-*.npz") for i in read_rows(part)[0].ids}
    assert len(finished) >= 3 * settings.batch_size

    items = shard_items(paths, BENCHMARKS, settings.n_shards, 0)
    resumed_provider = CountingProvider()
    resumed = compute_shard(
        items, settings, 0, cache_dir, parts_dir, lambda: resumed_provider, log=lambda m: None
    )
    assert not finished & set(resumed_provider.seen)  # no finished batch ran again
    assert set(resumed_provider.seen) | finished == {item.id for item in items}
    assert resumed.resumed == len(finished) and resumed.computed == len(items) - len(finished)
    assert not list(parts_dir.rglob("part-*.npz"))  # parts are gone once the shard exists

    fresh_dir = tmp_path / "fresh"
    fresh = compute_shard(
        items,
        settings,
        0,
        fresh_dir,
        tmp_path / "fresh-parts",
        CountingProvider,
        log=lambda m: None,
    )
    assert resumed.path.read_bytes() == fresh.path.read_bytes()
    assert resumed.digest == fresh.digest
