"""data.dvc after a fetch: `dvc add data/raw`, exactly as the demo's raw data is recorded, so
the Dagster source asset raw_data (whose data version is data.dvc's md5) and `dvc status` see
the new data. DVC runs as a command: it lives in its own environment (docs/running.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

RAW = "data/raw"


# The project records data/raw in data.dvc at its root; `dvc add data/raw` updates the file that
# already tracks data/raw, and writes data/raw.dvc only where none does.
DVC_FILES = ("data.dvc", "data/raw.dvc")


def dvc_file(root: Path) -> Path | None:
    """The .dvc file that tracks data/raw (None before the first `dvc add`)."""
    return next((root / name for name in DVC_FILES if (root / name).is_file()), None)


def dvc_md5(root: Path) -> str | None:
    """The md5 that file records for data/raw."""
    path = dvc_file(root)
    if path is None:
        return None
    outs = (yaml.safe_load(path.read_text()) or {}).get("outs") or [{}]
    return outs[0].get("md5")


def dvc_executable() -> str | None:
    beside = Path(sys.executable).with_name("dvc")  # the venv's link to .venv-dvc
    return str(beside) if beside.is_file() else shutil.which("dvc")


def record_raw_data(root: Path) -> str:
    """Run `dvc add data/raw`; one line saying what changed, or what to do by hand."""
    if not (root / ".dvc").is_dir():
        return f"{root} is not a DVC repository: data.dvc not updated"
    dvc = dvc_executable()
    if dvc is None:
        return "dvc is not installed (make install): run `dvc add data/raw` to update data.dvc"
    before = dvc_md5(root)
    done = subprocess.run(
        [dvc, "add", "-q", RAW], cwd=root, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return f"`dvc add data/raw` failed ({' / '.join(tail)}): data.dvc not updated"
    after, name = dvc_md5(root), dvc_file(root).relative_to(root)
    if after == before:
        return f"{name} unchanged (data/raw is {after})"
    return f"{name} updated: data/raw {before} -> {after} (commit {name}; `dvc push` to share)"
