"""The LMM API key comes only from the environment: after a real Dagster run of place_texts
(provider openai, against a local server), it appears nowhere in the MLflow store (sqlite db
and artifacts), the Dagster instance (event and compute logs), the outputs or the captured
logs, although the server did receive it."""

from __future__ import annotations

import logging
from pathlib import Path

import dagster as dg

from geoloc_assets.factory import build_assets
from geoloc_core.paths import ProjectPaths
from geoloc_core.text import read_place_texts
from tests.test_text_lmm import KEY_ENV, FakeLmmServer, openai_text_params
from tests.test_validation_dagster import (
    build_data_assets,
    photo_project,
    resources,
    temp_instance,
)

SECRET = "sk-geoloc-SECRET-3f9c1d7e-never-log-me"


def files_containing(folder: Path, needle: bytes) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_api_key_never_reaches_mlflow_dagster_or_logs(tmp_path, monkeypatch, caplog, capfd):
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.DEBUG)
    params = photo_project(tmp_path, with_gps=3, without_gps=0)
    with FakeLmmServer() as server:
        params["text"] = openai_text_params(server, lmm_send_image=True)
        assets = [*build_data_assets(params), *build_assets(params, only=["place_texts"])]
        with temp_instance(tmp_path) as instance:
            result = dg.materialize(
                assets,
                instance=instance,
                resources=resources(tmp_path),
                selection=dg.AssetSelection.assets("reference_manifest", "place_texts"),
            )
    assert result.success
    assert set(server.authorizations) == {f"Bearer {SECRET}"}  # the key was used ...
    assert len(server.requests) == 3
    texts = read_place_texts(ProjectPaths(tmp_path).place_texts)
    assert (texts["description"].str.startswith("Seen:")).all()

    captured = capfd.readouterr()
    assert SECRET not in caplog.text  # ... and written nowhere
    assert SECRET not in captured.out and SECRET not in captured.err
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()
    assert files_containing(tmp_path, SECRET.encode()) == []
    assert SECRET not in repr(result.all_events)
