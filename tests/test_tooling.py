"""The tools users drive: Dagster's CLI and selection grammar, DVC's experiments.

dagster needs the antlr4 4.13 runtime and DVC (through hydra/omegaconf) needs 4.9, so they live
in separate environments; these tests catch a resolver change that breaks either side.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from geoloc_assets.definitions import build_definitions
from tests.conftest import REPO

BIN = Path(sys.executable).parent


def dvc_executable() -> str:
    found = shutil.which("dvc", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        pytest.fail("dvc is not installed: run `make install` (it creates .venv-dvc and links dvc)")
    return found


def dvc_git_env(**extra: str) -> dict[str, str]:
    """The environment for real git and dvc commands in a temp repository: an identity for
    commits, no analytics."""
    return {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        **extra,
    }


def validate_definitions(root: Path) -> subprocess.CompletedProcess:
    """`dagster definitions validate` of the code location, with root as the project."""
    return subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-m", "geoloc_assets.definitions"],
        capture_output=True,
        text=True,
        env={**os.environ, "GEOLOC_ROOT": str(root)},
        cwd=root,
        timeout=300,
    )


def test_definitions_validate_with_the_dagster_cli():
    done = validate_definitions(REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Validation successful" in done.stdout + done.stderr


def test_a_bad_setting_fails_the_code_location_with_its_one_line(tmp_path):
    """What the UI shows for the location: the setting's message, not the parsers' stack."""
    params = (REPO / "params.yaml").read_text().replace("eps_km: 50.0", "eps_km: -5")
    (tmp_path / "params.yaml").write_text(params)
    done = validate_definitions(tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "ParamsError: params.yaml: rerank.eps_km=-5: must be a finite number > 0" in output
    assert "params_check.py" not in output and "dbscan.py" not in output


def test_selection_strings_parse_with_the_installed_antlr_runtime():
    defs = build_definitions(REPO)
    graph = defs.resolve_asset_graph()
    selected = dg.AssetSelection.from_string("group:evaluation").resolve(graph)
    assert selected == {dg.AssetKey("metrics"), dg.AssetKey("report")}
    downstream = dg.AssetSelection.from_string("key:verification+").resolve(graph)
    # the served model follows validation's verification (the far-photo threshold)
    assert downstream == {
        dg.AssetKey("verification"),
        dg.AssetKey("metrics"),
        dg.AssetKey("report"),
        dg.AssetKey("served_model"),
    }


def test_dvc_exp_run_with_set_param(tmp_path):
    dvc = dvc_executable()
    (tmp_path / "params.yaml").write_text("train:\n  epochs: 2\n")
    (tmp_path / "dvc.yaml").write_text(
        'stages:\n  echo:\n    cmd: python3 -c "import yaml,json; '
        "json.dump(yaml.safe_load(open('params.yaml')), open('out.json','w'))\"\n"
        "    params: [train.epochs]\n    outs: [out.json]\n"
    )
    env = dvc_git_env()

    def run(*args: str) -> str:
        done = subprocess.run(
            args, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300
        )
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done.stdout

    run("git", "init", "-q")
    run(dvc, "init", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "init")
    run(dvc, "exp", "run", "-S", "train.epochs=5")
    assert '"epochs": 5' in (tmp_path / "out.json").read_text()
