"""The served model on the materialized tiny project: what the served_model asset registered
(exactly the files the predict path reads), the real MLflow scoring server answering real
photos as `geoloc predict` does, the model loading in another process with the project's
artifacts moved away, and the LMM key coming only from the serving environment."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import dagster as dg
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
import sklearn
import yaml
from mlflow.tracking import MlflowClient
from PIL import Image

from geoloc_assets.cli import main
from geoloc_assets.runner import project_instance
from geoloc_core.file_hash import file_sha256
from geoloc_core.lmm.stub_server import LmmStubServer
from geoloc_core.paths import ProjectPaths
from geoloc_core.predict.far_warning import CALIBRATION_BENCHMARK, calibrate
from geoloc_core.predict.settings import PREDICT_SECTIONS
from geoloc_core.serving.registry import log_served_model

SAMPLES = Path(sklearn.__file__).parent / "datasets" / "images"  # real photos
PHOTOS = ("china.jpg", "flower.jpg")
NAME = "geoloc-predict"
BIN = Path(sys.executable).parent
FAKE_KEY = "sk-geoloc-FAKE-served-0123456789"


@pytest.fixture(scope="module")
def project(materialized_template, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("served") / "project"
    shutil.copytree(materialized_template, root)
    return root


@pytest.fixture(scope="module")
def client(project) -> MlflowClient:
    uri = ProjectPaths(project).tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def cli_predict(project: Path, paths: list[Path]) -> dict[str, dict]:
    """`geoloc predict --json` on these files, in one call: each answer by file name."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        command = ["--root", str(project), "predict", "--json", "--no-progress"]
        assert main([*command, *map(str, paths)]) == 0
    images = json.loads(out.getvalue())["images"]
    return {Path(i["image"]).name: i for i in images}


@pytest.fixture(scope="module")
def cli_answers(project, tmp_path_factory) -> dict[str, dict]:
    """`geoloc predict --json` on the sample photos and the noise photo, the batch the scoring
    server is sent (its broken record is no photo): what the served model must answer."""
    noise = tmp_path_factory.mktemp("noise") / "noise.png"
    noise.write_bytes(base64.b64decode(noise_png()))
    return cli_predict(project, [*(SAMPLES / name for name in PHOTOS), noise])


def encoded(name: str) -> str:
    return base64.b64encode((SAMPLES / name).read_bytes()).decode("ascii")


def assert_same_answer(served: dict, cli: dict) -> None:
    """Equal but for the photo's name; floats to 1e-6 (another process, same arithmetic: the
    same photos embedded in the same batch, since a batch's size moves a float32 cosine by about
    1e-6 here)."""
    assert served["image"] == Path(cli["image"]).name

    def same(a: Any, b: Any, where: str) -> None:
        if isinstance(b, dict):
            assert isinstance(a, dict) and set(a) == set(b), where
            for key in b:
                same(a[key], b[key], f"{where}.{key}")
        elif isinstance(b, list):
            assert isinstance(a, list) and len(a) == len(b), where
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                same(x, y, f"{where}[{i}]")
        elif isinstance(b, float):
            assert a == pytest.approx(b, abs=1e-6), where
        else:
            assert a == b, where

    same(
        {k: v for k, v in served.items() if k != "image"},
        {k: v for k, v in cli.items() if k != "image"},
        "answer",
    )
    assert cli["candidates"] and all(c["place_name"] for c in cli["candidates"])


def test_the_asset_registered_exactly_what_predict_reads(project, client, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(project / ".dagster"))
    event = project_instance(project).get_latest_materialization_event(dg.AssetKey("served_model"))
    metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    [version] = client.search_model_versions(f"name = '{NAME}'")
    assert metadata["registered_model"] == NAME
    assert metadata["registered_version"] == str(version.version) == "1"
    assert metadata["model_uri"] == f"models:/{NAME}/1"
    assert metadata["mlflow_run_id"] == version.run_id
    assert version.run_id in metadata["mlflow_run"]
    assert version.source == f"runs:/{version.run_id}/served_model"
    record = json.loads(ProjectPaths(project).served_model_record.read_text())
    assert record["registered_model"] == NAME  # by content only: DVC's output is reproducible
    assert event.asset_materialization.tags["dagster/data_version"] == metadata["data_version"]

    local = Path(client.download_artifacts(version.run_id, "served_model", str(project.parent)))
    bundle = local / "artifacts" / "bundle"
    bundle_record = json.loads((bundle / "bundle.json").read_text())
    listed = bundle_record["files"]
    # the far-photo warning's threshold, calibrated on the project's validation decisions
    far = calibrate(
        ProjectPaths(project).predictions(CALIBRATION_BENCHMARK),
        ProjectPaths(project).errors(CALIBRATION_BENCHMARK),
    )
    assert far is not None and bundle_record["far_warning"]["threshold"] == pytest.approx(
        far.threshold
    )
    assert record["bundle"] == {**listed, "bundle.json": file_sha256(bundle / "bundle.json")}
    on_disk = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    assert on_disk == {*listed, "bundle.json"}
    weights = json.loads((project / "artifacts/model/config.json").read_text())["features"]
    expected = {
        "artifacts/model/model.pt",
        "artifacts/model/config.json",
        weights["pretrained"],
        "artifacts/index/reference.faiss",
        "artifacts/index/reference_meta.csv",
        "artifacts/index/index.json",
        "artifacts/texts/place_texts.csv",
        "artifacts/confidence/calibration.json",
        "params.yaml",
    }
    sidecar = "artifacts/index/reference.faiss.sha256"  # the index's checksum, when written
    if (project / sidecar).is_file():
        expected.add(sidecar)
    assert set(listed) == expected
    for name, digest in listed.items():
        assert digest == file_sha256(bundle / name)
        if name != "params.yaml":
            assert digest == file_sha256(project / name), name
    bundled = yaml.safe_load((bundle / "params.yaml").read_text())
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert bundled == {name: params[name] for name in PREDICT_SECTIONS}
    mlmodel = yaml.safe_load((local / "MLmodel").read_text())
    signature = {k: json.loads(v) for k, v in mlmodel["signature"].items()}
    assert [c["name"] for c in signature["inputs"]] == ["image", "name"]
    assert {c["name"] for c in signature["outputs"]} >= {"candidates", "lat", "lon", "error"}
    outputs = {c["name"]: c for c in signature["outputs"]}
    assert {"warning", "places_total", "confidence"} <= set(outputs)
    radius = outputs["confidence"]["properties"]["radii"]["items"]["properties"]
    assert set(radius) == {"level", "radius_km"}
    candidate = outputs["candidates"]["items"]["properties"]
    assert candidate["views"]["type"] == "long"
    assert signature["params"] == [{"name": "top_k", "type": "long", "default": 5, "shape": None}]
    example = json.loads((local / mlmodel["saved_input_example_info"]["artifact_path"]).read_text())
    assert base64.b64decode(example["data"][0][0]).startswith(b"\x89PNG")
    assert (local / "code" / "geoloc_core" / "predict" / "predictor.py").is_file()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.load(response)


@contextlib.contextmanager
def scoring_server(project: Path, log: Path):
    """`mlflow models serve -m models:/geoloc-predict/latest` on a free port, stopped after."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "GEOLOC_ROOT"},
        "MLFLOW_TRACKING_URI": ProjectPaths(project).tracking_uri,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",  # its uvicorn
    }
    command = [
        str(BIN / "mlflow"),
        "models",
        "serve",
        "-m",
        f"models:/{NAME}/latest",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--env-manager",
        "local",
    ]
    with log.open("w") as sink:
        server = subprocess.Popen(
            command,
            cwd=log.parent,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert server.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_the_scoring_server_answers_like_geoloc_predict(project, cli_answers, tmp_path):
    paths = ProjectPaths(project)
    far = calibrate(paths.predictions(CALIBRATION_BENCHMARK), paths.errors(CALIBRATION_BENCHMARK))
    with scoring_server(project, tmp_path / "serve.log") as base:
        records = [{"image": encoded(name), "name": name} for name in PHOTOS]
        records.append({"image": "this is not base64!", "name": "broken"})
        records.append({"image": noise_png(), "name": "noise"})
        answer = post(f"{base}/invocations", {"dataframe_records": records})
    served, cli = answer["predictions"], cli_answers
    for name, found in zip(PHOTOS, served, strict=False):
        assert_same_answer(found, cli[name])
        for candidate in found["candidates"]:
            assert -90 <= candidate["lat"] <= 90 and -180 <= candidate["lon"] <= 180
    assert served[2]["image"] == "broken" and served[2]["candidates"] == []
    assert served[2]["error"] == "the `image` field is not base64-encoded bytes"
    # noise is warned about: below the bundle's threshold (the project's), or by the
    # non-photo test when its score is not that low
    assert far is not None and served[3]["candidates"]
    assert_same_answer({**served[3], "image": "noise.png"}, cli["noise.png"])
    assert served[3]["warning"].startswith("far from everything the model knows")
    if served[3]["score"] < far.threshold:
        assert f"below {far.threshold:.4f}" in served[3]["warning"]
    else:
        assert "than to any reference photo" in served[3]["warning"]


def noise_png() -> str:
    """Random pixels, base64: a photo of nowhere the model knows (as tests/test_predict_cli)."""
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def test_the_model_loads_in_another_process_without_the_project(project, client, tmp_path):
    [version] = client.search_model_versions(f"name = '{NAME}'")
    local = client.download_artifacts(version.run_id, "served_model", str(tmp_path))
    probe = (
        "import base64, json, sys\n"
        "import mlflow.pyfunc, pandas as pd\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "photo = base64.b64encode(open(sys.argv[2], 'rb').read()).decode()\n"
        "rows = pd.DataFrame({'image': [photo], 'name': ['flower.jpg']})\n"
        "print(json.dumps(model.predict(rows)[0]))\n"
        "import geoloc_core\n"
        "print('CODE', geoloc_core.__file__, file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("GEOLOC_ROOT", "MLFLOW_TRACKING_URI")}
    moved = project / "artifacts.elsewhere"
    (project / "artifacts").rename(moved)  # nothing of the project may be read
    try:
        done = subprocess.run(
            [sys.executable, "-c", probe, local, str(SAMPLES / "flower.jpg")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        moved.rename(project / "artifacts")
    assert done.returncode == 0, done.stderr[-3000:]
    alone = cli_predict(project, [SAMPLES / "flower.jpg"])["flower.jpg"]  # the same batch of one
    assert_same_answer(json.loads(done.stdout.strip().splitlines()[-1]), alone)
    code = Path(done.stderr.split("CODE ")[1].split()[0])
    assert code.is_relative_to(Path(local) / "code")  # the model's own copy of the code


def test_the_lmm_key_comes_from_the_serving_environment_only(project, client, monkeypatch):
    """A served model with an LMM: logged while the key is set, it holds no trace of it; it
    needs the key in the environment it runs in, and its LMM answers join the pool."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # load_model prepends the model's code
    monkeypatch.setenv("GEOLOC_LMM_API_KEY", FAKE_KEY)
    params = yaml.safe_load((project / "params.yaml").read_text())
    sections = {name: params[name] for name in PREDICT_SECTIONS}
    experiment = client.get_experiment_by_name("geoloc").experiment_id
    with LmmStubServer() as server:
        sections["lmm"] = {
            **sections["lmm"],
            "provider": "openai",
            "base_url": server.base_url,
            "n": 2,
            "g3_rag_sizes": [0, 5],
        }
        run = client.create_run(experiment, run_name="served model with an LMM").info
        served = log_served_model(project, sections, client, run.run_id, f"{NAME}-lmm")
        client.set_terminated(run.run_id)
        stored = Path(client.get_run(run.run_id).info.artifact_uri.removeprefix("file://"))
        files = [p for p in stored.rglob("*") if p.is_file()]
        assert files and not [p for p in files if FAKE_KEY.encode() in p.read_bytes()]
        assert served.version == "1"

        model = mlflow.pyfunc.load_model(str(stored / "served_model"))
        rows = pd.DataFrame({"image": [encoded("flower.jpg")], "name": ["flower.jpg"]})
        monkeypatch.delenv("GEOLOC_LMM_API_KEY")
        with pytest.raises(Exception, match="GEOLOC_LMM_API_KEY"):
            model.predict(rows)
        monkeypatch.setenv("GEOLOC_LMM_API_KEY", FAKE_KEY)
        [found] = model.predict(rows, params={"top_k": 100})
    stages = [c["stage"] for c in found["candidates"]]
    assert stages.count("lmm-zero-shot") == 2 and stages.count("lmm-rag-5") == 2
    assert found["candidates_total"] == sections["verification"]["pool_size"] + 4


def test_the_served_model_hashes_the_predict_sections_but_upstream_ones():
    """Its code version follows what the predict path reads, except the sections whose changes
    reach it through segmentation_cache's and place_texts' content."""
    from geoloc_core.pipeline.registry import asset_sections
    from geoloc_core.predict.settings import UPSTREAM_SECTIONS

    hashed = tuple(s for s in PREDICT_SECTIONS if s not in UPSTREAM_SECTIONS)
    assert asset_sections()["served_model"] == hashed
