"""A segmentation shard is written to a temporary file and os.replace()d into place
(segmentation/container.write_arrays), so a reader or a killed writer never sees half a file.

A real writer process keeps rewriting one shard with large arrays while this process reads it
back with read_arrays: every read must verify, and after a SIGKILL of the writer the file on
disk must be one complete version. Written straight to its final path, thousands of reads
see a torn zip."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from geoloc_core.segmentation.container import CorruptFileError, read_arrays, read_meta

REPO = Path(__file__).resolve().parent.parent

WRITER = """
import sys
from pathlib import Path
import numpy as np
from geoloc_core.segmentation.container import write_arrays

path = Path(sys.argv[1])
for i in range(100000):
    maps = np.full((24, 512, 512), i % 256, dtype=np.uint8)  # 6 MB per version
    write_arrays(path, {"maps": maps}, {"version": i})
"""


def test_readers_never_see_a_torn_shard_and_a_killed_writer_leaves_a_whole_one(tmp_path):
    target = tmp_path / "cache" / "shard-00000-of-00001.npz"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not target.exists():
            assert writer.poll() is None, writer.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "the writer never wrote its first version"
            time.sleep(0.005)
        versions: set[int] = set()
        torn: list[str] = []
        reads = 0
        stop = time.monotonic() + 8
        while time.monotonic() < stop and (len(versions) < 5 or reads < 200):
            try:
                arrays, meta = read_arrays(target)
            except (CorruptFileError, FileNotFoundError) as exc:
                torn.append(f"{type(exc).__name__}: {exc}")
                continue
            finally:
                reads += 1
            version = meta["version"]
            assert (arrays["maps"] == version % 256).all()
            versions.add(version)
        assert not torn, f"{len(torn)} of {reads} reads saw a torn shard, e.g. {torn[0]}"
        assert len(versions) >= 2, "the writer did not rewrite the file while it was read"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    # killed at an arbitrary moment of its loop: what is on disk is one whole version
    arrays, meta = read_arrays(target)
    assert (arrays["maps"] == meta["version"] % 256).all()
    assert read_meta(target)["version"] == meta["version"]
