"""Bad settings are refused when params load, in one line naming the key and what is allowed:
by `geoloc status`, by `geoloc materialize` and by the Dagster definitions."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from geoloc_assets.cli import main
from geoloc_assets.definitions import build_definitions
from geoloc_core.params import ParamsError
from geoloc_core.params_check import validate_params
from tests.conftest import REPO

BAD = [
    # (section, key, value, what the one line must say)
    ("model", "variant", "g33", "model.variant='g33': must be one of"),
    ("retrieval", "top_k", -3, "retrieval.top_k=-3: must be an int >= 1"),
    ("retrieval", "top_k", "20", "retrieval.top_k='20': must be an int >= 1"),
    ("rerank", "eps_km", 0, "rerank.eps_km=0: must be a finite number > 0"),
    ("rerank", "eps_km", -5.0, "rerank.eps_km=-5.0: must be a finite number > 0"),
    (
        "rerank",
        "method",
        "kmeans",
        "rerank.method='kmeans': must be one of ['none', 'dbscan', 'hdbscan']",
    ),
    ("rerank", "min_samples", True, "rerank.min_samples=True"),
    ("index", "type", "annoy", "index.type='annoy': must be one of ['flat', 'ivfpq', 'hnsw']"),
    ("verification", "method", "best", "verification.method='best': must be one of"),
    ("embeddings", "parts", ["frozen", "fused_gps"], "does not compute ['fused_gps']"),
    ("embeddings", "parts", ["pixels"], "embeddings.parts=['pixels']: must be 'auto' or a"),
    ("benchmarks", "names", ["im2gps"], "benchmarks.names=['im2gps']: must be a non-empty list"),
    ("evaluation", "distance", "vincenty", "evaluation.distance='vincenty': must be one of"),
    ("rerank", "eps", 10, "unknown ['eps']"),
    ("train", "checkpoint_every_steps", -1, "train.checkpoint_every_steps=-1: must be an int >= 0"),
    ("train", "checkpoint_every_steps", 0.5, "train.checkpoint_every_steps=0.5: must be an int"),
]


def write_params(root: Path, section: str, key: str, value) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params[section][key] = value
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_the_shipped_params_are_valid():
    validate_params(yaml.safe_load((REPO / "params.yaml").read_text()))


@pytest.mark.parametrize(("section", "key", "value", "message"), BAD)
def test_bad_setting_is_one_named_line(tmp_path, section, key, value, message):
    write_params(tmp_path, section, key, value)
    with pytest.raises(ParamsError) as caught:
        build_definitions(tmp_path)
    text = str(caught.value)
    assert message in text and "\n" not in text


def test_settings_valid_alone_but_not_together_are_refused():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["model"] |= {"variant": "dualgeo", "seg_grid": 7}
    with pytest.raises(ParamsError) as caught:
        validate_params(params)
    assert str(caught.value).startswith(
        "params.yaml: model.seg_grid=7 must divide segmentation.output_resolution=64"
    )
    params["model"]["variant"] = "g3"  # no segmentation tokens: any grid will do
    validate_params(params)


@pytest.mark.parametrize("command", [["status"], ["materialize", "--group", "rerank"]])
def test_cli_refuses_bad_settings_before_running(tmp_path, capsys, command, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / ".dagster"))
    write_params(tmp_path, "rerank", "eps_km", -1)
    assert main(["--root", str(tmp_path), *command]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["geoloc: error: params.yaml: rerank.eps_km=-1: must be a finite number > 0"]
