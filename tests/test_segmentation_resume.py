"""Killing a shard mid-way (SIGKILL, no clean-up) loses nothing: the re-run computes only the
batches that had no finished part file, and the shard equals a from-scratch run byte for byte.
The child stops for good after its third part file (shard.py's test hook), so the kill point
never depends on how fast the machine is."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from geoloc_core.segmentation.settings import SegmentationSettings
from geoloc_core.segmentation.shard import (
    STOP_AFTER_BATCH_ENV,
    STOPPED_MARKER,
    compute_shard,
)
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
import json, sys
from pathlib import Path
from geoloc_core.paths import ProjectPaths
from geoloc_core.segmentation.providers.demo import DemoProvider
from geoloc_core.segmentation.settings import SegmentationSettings
from geoloc_core.segmentation.shard import (
    STOP_AFTER_BATCH_ENV,
    STOPPED_MARKER,
    compute_shard,
)
from geoloc_core.segmentation.worklist import shard_items

root, cache_dir, parts_dir = (Path(a) for a in sys.argv[1:4])
section, benchmarks = json.loads(sys.argv[4]), json.loads(sys.argv[5])
settings = SegmentationSettings.from_section(section)
items = shard_items(ProjectPaths(root), benchmarks, settings.n_shards, 0)
provider = lambda: DemoProvider(condition_errors=False)  # as CountingProvider
compute_shard(items, settings, 0, cache_dir, parts_dir, provider, log=lambda m: None)
"""
STOP_AFTER = 3  # the child stops for good once it has written this many part files


def wait_until_stopped(parts_dir: Path, child: subprocess.Popen) -> None:
    """Until the child has written its STOP_AFTER-th part and stopped there for good."""
    deadline = time.monotonic() + 120
    while not list(parts_dir.rglob(STOPPED_MARKER)):
        assert child.poll() is None, "the child ended without stopping at its test hook"
        assert time.monotonic() < deadline, "the child did not reach its stop point in 120 s"
        time.sleep(0.01)


def test_killed_shard_resumes_and_equals_a_fresh_run(tiny_project, tmp_path):
    paths = with_manifests(tiny_project)
    section = segmentation_section(batch_size=3)
    settings = SegmentationSettings.from_section(section)
    cache_dir, parts_dir = tmp_path / "cache", tmp_path / "parts"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    args = [str(a) for a in (tiny_project, cache_dir, parts_dir)]
    child = subprocess.Popen(
        [sys.executable, str(script), *args, json.dumps(section), json.dumps(BENCHMARKS)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), STOP_AFTER_BATCH_ENV: str(STOP_AFTER)},
    )
    try:
        wait_until_stopped(parts_dir, child)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not list(cache_dir.glob("shard-*.npz")), "killed before the shard was assembled"
    parts = sorted(parts_dir.rglob("part-*.npz"))
    assert [p.name for p in parts] == [f"part-{n:06d}.npz" for n in range(STOP_AFTER)]
    finished = {i for part in parts for i in read_rows(part)[0].ids}
    items = shard_items(paths, BENCHMARKS, settings.n_shards, 0)
    assert len(items) > (STOP_AFTER + 1) * settings.batch_size  # the kill is mid-shard
    assert finished == {item.id for item in items[: STOP_AFTER * settings.batch_size]}

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
