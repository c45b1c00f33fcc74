"""`geoloc preflight`: can the settings in force finish on this machine?

It checks the weights, the data, the GPU and the secrets the settings need, and estimates per
stage the disk its outputs take and the time it should need (measured bytes per item and
throughput, scaled to the settings' shapes and sizes, assumptions stated), and refuses, with
one line per problem and its fix, what cannot finish. Nothing is downloaded or computed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from geoloc_core.params import PARAMS_FILE, load_params
from geoloc_core.preflight.data import data_problems, item_counts
from geoloc_core.preflight.devices import (
    cuda_available,
    device_keys,
    gpu_problems,
    runs_on,
    secret_problems,
)
from geoloc_core.preflight.estimates import stage_estimates
from geoloc_core.preflight.report import PreflightReport, Problem, StageEstimate, human_bytes
from geoloc_core.preflight.weights import weight_problems
from geoloc_core.profiles import active_profile
from geoloc_core.settings_tree import load_tree

__all__ = ["PreflightReport", "Problem", "StageEstimate", "run_preflight"]

DVC_CACHE_NOTE = (
    "DVC keeps a copy of every cached output in .dvc/cache (its default cache.type "
    "reflink,copy copies on most filesystems): count the disk twice, or set "
    "`dvc config cache.type hardlink,symlink`"
)


def run_preflight(root: Path, gpu: bool | None = None) -> PreflightReport:
    """The report for root's params.yaml; gpu: whether a CUDA device is here (default: ask
    torch)."""
    root = Path(root)
    params = load_params(root)
    load_tree(params)  # a bad setting is refused first, naming its key
    gpu = cuda_available() if gpu is None else gpu
    profile = active_profile((root / PARAMS_FILE).read_text())
    counts = item_counts(root, params)
    report = PreflightReport(
        profile=profile,
        device=runs_on(params, gpu),
        free_bytes=shutil.disk_usage(root).free,
        problems=[
            *weight_problems(root, params),
            *data_problems(root, params),
            *gpu_problems(params, gpu),
            *secret_problems(params),
        ],
        stages=stage_estimates(root, params, counts, profile == "demo", gpu),
        notes=[f"items from {counts.basis}", *_cpu_notes(params, gpu), DVC_CACHE_NOTE],
    )
    rewritable = _folder_bytes(root / "artifacts")  # a re-run replaces what is there
    if report.disk_bytes > report.free_bytes + rewritable:
        short = report.disk_bytes - report.free_bytes - rewritable
        report.problems.append(
            Problem(
                "disk",
                f"the outputs need {human_bytes(report.disk_bytes)}, "
                f"{human_bytes(short)} more than is free on {root}",
                f"free {human_bytes(short)} on that disk, or run from a project on a larger one",
            )
        )
    return report


def _cpu_notes(params: dict, gpu: bool) -> list[str]:
    """`auto` sections run on the CPU when no GPU is here: allowed, but said."""
    auto = [key for key, device in device_keys(params).items() if device == "auto"]
    if gpu or not auto:
        return []
    return [f"no CUDA device here: {', '.join(auto)} (auto) will run on the CPU"]


def _folder_bytes(folder: Path) -> int:
    total = 0
    for directory, _, files in os.walk(folder):
        for name in files:
            try:
                total += (Path(directory) / name).stat().st_size
            except OSError:
                continue
    return total
