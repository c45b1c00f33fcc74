"""`dvc repro` drives the Dagster graph; a params change re-runs exactly the stages that read it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from geoloc_core.pipeline.registry import STAGES, downstream, readers
from tests.conftest import make_tiny_project
from tests.test_tooling import dvc_executable, dvc_git_env

BIN = Path(sys.executable).parent
BENCHMARKS = ("validation", "demo-street", "demo-unseen")
OUTPUT_FOLDERS = ("data/manifests", "artifacts", "metrics", "reports")
# What may differ between two runs from scratch: nothing. The list says where to look if a
# future change makes a step non-deterministic on purpose (e.g. a timestamp in a summary).
ALLOWED_TO_DIFFER: frozenset[str] = frozenset()


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def compare_outputs(one: Path, other: Path) -> tuple[list[str], list[str]]:
    """(byte-identical, different) among the files both runs wrote under OUTPUT_FOLDERS."""
    same, different = [], []
    for folder in OUTPUT_FOLDERS:
        for path in sorted((one / folder).rglob("*")):
            twin = other / path.relative_to(one)
            if path.is_file() and twin.is_file():
                name = path.relative_to(one).as_posix()
                (same if path.read_bytes() == twin.read_bytes() else different).append(name)
    return same, different


@pytest.mark.slow
def test_dvc_repro_then_eps_change_reruns_only_rerank_and_below(tmp_path, request):
    dvc = dvc_executable()
    root = make_tiny_project(tmp_path / "project", with_code=True)
    env = dvc_git_env(
        PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
        GEOLOC_ROOT=str(root),
        DAGSTER_HOME=str(root / ".dagster"),
        PYTHONDONTWRITEBYTECODE="1",
    )

    def run(*args: str) -> str:
        done = subprocess.run(args, cwd=root, capture_output=True, text=True, env=env, timeout=900)
        assert done.returncode == 0, f"{args}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        return done.stdout + done.stderr

    (root / ".gitignore").write_text(".dagster/\n.checkpoints/\nmlruns/\n")
    run("git", "init", "-q")
    run(dvc, "init", "-q")
    run(dvc, "add", "-q", "data/raw")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "tiny project")

    first = run(dvc, "repro")
    stages = {
        "data",
        "texts",
        "segmentation",
        "features",
        "model",
        "index",
        "retrieval",
        "rerank",
        "lmm",
        "verification",
        "baselines",
        "evaluation",
        "serving",
    }
    assert ran_stages(first) == stages
    for benchmark in BENCHMARKS:
        metrics = json.loads((root / "metrics" / f"{benchmark}.json").read_text())
        assert {"acc_1km", "acc_2500km", "median_km", "n"} <= set(metrics)
    # Determinism: this run from scratch (DVC stage by stage) and the session's template (one
    # Dagster pass) have the same params and seed, so they wrote the same bytes. The template
    # is asked for only now: under xdist another worker builds it meanwhile, where this one
    # would otherwise wait for it before starting its own run from scratch.
    template = request.getfixturevalue("materialized_template")
    same, different = compare_outputs(root, template)
    print(f"byte-identical in both runs from scratch ({len(same)}): {same}")
    print(f"different ({len(different)}): {different}")
    for benchmark in BENCHMARKS:
        assert f"metrics/{benchmark}.json" in same
    assert set(different) <= ALLOWED_TO_DIFFER, different
    assert len(same) > 50  # manifests, caches, checkpoint, embeddings, index, predictions
    status = run(dvc, "status")
    assert "up to date" in status, status
    assert ran_stages(run(dvc, "repro")) == set()

    params = root / "params.yaml"
    # params.yaml keeps the retrieval order; DualGeo's re-rank at 5000 km merges sites across a
    # continent, so the re-ranked order (and what follows) changes
    settings = yaml.safe_load(params.read_text())
    assert settings["rerank"]["method"] == "none"
    settings["rerank"].update(method="dbscan", eps_km=5000.0)
    params.write_text(yaml.safe_dump(settings, sort_keys=False))
    changed = run(dvc, "status")
    assert "rerank:" in changed and "model:" not in changed and "retrieval:" not in changed
    dagster_view = run("geoloc", "status")
    stale = {line.split()[1] for line in dagster_view.splitlines() if line.startswith("stale")}
    stages = {stage.name: stage for stage in STAGES}
    below = downstream(readers("rerank"))  # the served model bundles rerank
    assert below == {
        "rerank", "lmm_reasoning", "confidence_calibration", "verification", "metrics", "report",
        "served_model",
    }
    assert stale == {
        f"{a}[{b}]" if stages[a].partitioning == "benchmark" else a
        for a in below
        for b in BENCHMARKS
    }
    assert ran_stages(run(dvc, "repro")) == {stages[a].group for a in below}
    assert "up to date" in run(dvc, "status")
    after = run("geoloc", "status").splitlines()
    pending = [line for line in after if line.startswith(("stale", "missing"))]
    assert pending == [] and any(line.startswith("fresh") for line in after), after
