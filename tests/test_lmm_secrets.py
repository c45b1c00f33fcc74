"""The LMM API key comes only from the environment: after g3 and dualgeo runs through retries,
refusals and a stopped run, a recognisable fake key appears in no file under the project
(answers, summary, cache) and in no log line, although the server did receive it."""

from __future__ import annotations

import hashlib
import logging

import pytest

from geoloc_core.lmm.errors import LmmStageError
from geoloc_core.lmm.stub_server import LmmStubServer
from geoloc_core.steps.lmm import run_lmm_stage
from tests.test_lmm_stage import BENCHMARK, KEY_ENV, make_project, stage_section

SECRET = "sk-geoloc-FAKE-0123456789"


def files_containing(folder, needle: bytes) -> list:
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_api_key_is_written_nowhere_and_logged_nowhere(tmp_path, monkeypatch, caplog, capfd):
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.DEBUG)
    paths = make_project(tmp_path, queries=2, per_kind=5)
    lines: list[str] = []
    with LmmStubServer(faults=["429", "500", "malformed", "fewer_choices"]) as server:
        base = stage_section(server, g3_rag_sizes=[0, 5], n=2, max_concurrency=2)
        run_lmm_stage(paths, BENCHMARK, base | {"max_requests": 2}, log=lines.append)
        server.set_faults(always=["prose"])
        run_lmm_stage(paths, BENCHMARK, base, log=lines.append)
        run_lmm_stage(paths, BENCHMARK, base | {"mode": "dualgeo"}, log=lines.append)
        server.set_faults(always=["401"])
        with pytest.raises(LmmStageError) as raised:
            run_lmm_stage(paths, BENCHMARK, base | {"n": 3}, log=lines.append)
        hashes = server.stats()["authorization_sha256"]
    assert hashlib.sha256(f"Bearer {SECRET}".encode()).hexdigest() in hashes  # it was used
    captured = capfd.readouterr()
    assert lines and all(SECRET not in line for line in lines)
    assert SECRET not in str(raised.value)
    assert SECRET not in caplog.text
    assert SECRET not in captured.out and SECRET not in captured.err
    assert list((paths.root / "artifacts" / "cache" / "lmm_stage").rglob("*.json"))
    assert files_containing(paths.root, SECRET.encode()) == []
    assert files_containing(paths.root, b"FAKE-0123") == []
