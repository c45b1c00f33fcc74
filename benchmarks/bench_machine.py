"""The machine a benchmark ran on, the library versions, and its measured matmul rates.

The rates are the "physical" limits the index and embedding rows compare with: a dense float32
matrix product is the fastest thing these CPUs do, so FLOPs / rate is the time no
implementation of the same arithmetic can beat on this machine. numpy's rate (OpenBLAS; FAISS
ships its own OpenBLAS build) bounds the index; torch's rate (its own BLAS, at torch's thread
count) bounds the image towers. Rates are the best of several runs (see numpy_matmul_gflops).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

LIBRARIES = (
    "torch",
    "faiss-cpu",
    "numpy",
    "open_clip_torch",
    "scikit-learn",
    "dagster",
    "mlflow",
    "geopy",
    "pyproj",
    "pandas",
    "reverse_geocoder",
)
MATMUL_SIDE = 2048
MATMUL_REPEATS = 10


def _proc_line(path: str, prefix: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as lines:
            return next((line for line in lines if line.startswith(prefix)), None)
    except OSError:
        return None


def _cpuinfo_model() -> str:
    line = _proc_line("/proc/cpuinfo", "model name")
    return line.split(":", 1)[1].strip() if line else platform.processor() or "unknown"


def _ram_gib() -> float:
    line = _proc_line("/proc/meminfo", "MemTotal:")
    return int(line.split()[1]) / 2**20 if line else float("nan")


def dvc_version() -> str:
    """DVC lives in its own environment (.venv-dvc), so ask the executable, not the metadata."""
    beside = Path(sys.executable).parent / "dvc"  # .venv/bin/dvc links to .venv-dvc
    dvc = shutil.which("dvc") or (str(beside) if beside.exists() else None)
    if dvc is None:
        return "not found"
    try:
        out = subprocess.run([dvc, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def machine() -> dict[str, Any]:
    return {
        "cpu": _cpuinfo_model(),
        "cores": os.cpu_count(),
        "ram_gib": round(_ram_gib(), 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    found["dvc"] = dvc_version()
    return found


def numpy_matmul_gflops(side: int = MATMUL_SIDE, repeats: int = MATMUL_REPEATS) -> float:
    """float32 GFLOP/s of a square numpy matrix product: the best of repeats, after a warm-up.

    The best, not the median, because this is a limit: a neighbour's load only ever slows a
    run down, and a bound taken from a slowed run would flatter whatever is compared with it.
    """
    import numpy as np
    from bench_rows import timed

    a = np.random.default_rng(1).standard_normal((side, side), dtype=np.float32)
    _, timing = timed(lambda: a @ a, repeats, warmup=1)
    return 2 * side**3 / min(timing.samples) / 1e9


def torch_matmul_gflops(side: int = MATMUL_SIDE, repeats: int = MATMUL_REPEATS) -> float:
    """float32 GFLOP/s of a square torch matrix product at torch's current thread count (the
    best of repeats, as for numpy)."""
    import torch
    from bench_rows import timed

    a = torch.randn(side, side, generator=torch.Generator().manual_seed(1))
    _, timing = timed(lambda: a @ a, repeats, warmup=1)
    return 2 * side**3 / min(timing.samples) / 1e9
