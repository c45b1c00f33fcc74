"""The LMM text provider against an OpenAI-compatible server started by the test on 127.0.0.1:
cached re-runs make no request; 429s, 5xx and timeouts are retried; the budget stops a run
with a clear error and keeps what was answered."""

from __future__ import annotations

import contextlib
import json
import threading
from collections import deque
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from geoloc_core.lmm.stub_server import send_json
from geoloc_core.text.lmm import (
    LmmBudgetExceeded,
    LmmDescriber,
    LmmError,
    PlaceQuery,
    client_from_environment,
)
from geoloc_core.text.settings import TextSettings
from tests.test_data_params import layer_params

KEY_ENV = "GEOLOC_TEST_LMM_KEY"


class FakeLmmServer:
    """Chat completions on 127.0.0.1 with a script of failures for the next requests."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.authorizations: list[str] = []
        self.script: deque = deque()
        self.lock = threading.Lock()
        self.released = threading.Event()  # ends a "hold": set by the next request, or on exit
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(body)
                    server.authorizations.append(self.headers.get("Authorization", ""))
                    action = server.script.popleft() if server.script else "ok"
                    if action == "hold":
                        server.released.clear()
                    else:
                        server.released.set()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    server.respond(self, action, body)  # a timed-out client hangs up

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def respond(self, handler: BaseHTTPRequestHandler, action, body: dict) -> None:
        if action == "hold":  # no answer until the client has given up and asked again
            self.released.wait()
            return
        if action == "429":
            send_json(handler, 429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
        elif action == "500":
            send_json(handler, 500, {"error": {"message": "overloaded"}})
        else:
            content = body["messages"][0]["content"]
            text = content if isinstance(content, str) else content[0]["text"]
            answer = f"Seen: {text}"
            send_json(handler, 200, completion(body["model"], answer))

    def __enter__(self) -> FakeLmmServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(model: str, text: str) -> dict:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


@pytest.fixture
def server():
    with FakeLmmServer() as running:
        yield running


def openai_text_params(server: FakeLmmServer, **overrides) -> dict:
    text = layer_params()["text"] | {
        "provider": "openai",
        "lmm_base_url": server.base_url,
        "lmm_model": "test-model",
        "lmm_api_key_env": KEY_ENV,
        "lmm_max_concurrency": 2,
        "lmm_backoff_s": 0.01,
        "lmm_timeout_s": 2.0,
    }
    return text | overrides


def describer(tmp_path: Path, server: FakeLmmServer, **overrides) -> LmmDescriber:
    text = TextSettings.from_section(openai_text_params(server, **overrides))
    settings = text.lmm_settings(tmp_path)
    return LmmDescriber(settings, client_from_environment(settings))


QUERIES = [
    PlaceQuery("a", "Paris, Île-de-France, France", 48.8584, 2.2945),
    PlaceQuery("b", "Sydney, New South Wales, Australia", -33.8568, 151.2153),
    PlaceQuery("c", "Paris, Île-de-France, France", 48.85, 2.29),  # same place, same request
]


@pytest.fixture(autouse=True)
def api_key(monkeypatch) -> str:
    monkeypatch.setenv(KEY_ENV, "sk-test-not-a-secret")
    return "sk-test-not-a-secret"


def test_cached_rerun_makes_no_request(tmp_path, server, api_key):
    first = describer(tmp_path, server).describe(QUERIES)
    assert len(server.requests) == 2  # two distinct requests for three rows
    assert first[0] == first[2] and "Paris" in first[0] and "Sydney" in first[1]
    assert set(server.authorizations) == {f"Bearer {api_key}"}
    again = describer(tmp_path, server)
    assert again.describe(QUERIES) == first
    assert len(server.requests) == 2
    assert again.stats.as_metrics()["lmm_requests"] == 0
    assert again.stats.as_metrics()["lmm_cache_hits"] == 3


def test_429_and_5xx_are_retried(tmp_path, server):
    server.script.extend(["429", "500", "429"])
    worker = describer(tmp_path, server, lmm_max_concurrency=1)
    answers = worker.describe(QUERIES[:1])
    assert answers[0].startswith("Seen:")
    assert len(server.requests) == 4
    assert worker.stats.retries == 3 and worker.stats.requests == 4


def test_timeouts_are_retried(tmp_path, server):
    """The first request is held unanswered until the retry arrives, so it times out on any
    machine; the retry is answered at once, well inside the timeout."""
    server.script.append("hold")
    worker = describer(tmp_path, server, lmm_timeout_s=0.5, lmm_max_concurrency=1)
    assert worker.describe(QUERIES[:1])[0].startswith("Seen:")
    assert worker.stats.retries == 1 and len(server.requests) == 2


def test_retries_give_up_with_a_clear_error(tmp_path, server):
    server.script.extend(["500"] * 3)
    worker = describer(tmp_path, server, lmm_max_retries=2, lmm_max_concurrency=1)
    with pytest.raises(LmmError, match="image a failed 3 times, last with InternalServerError"):
        worker.describe(QUERIES[:1])


def test_budget_stops_the_run_and_keeps_what_was_answered(tmp_path, server):
    queries = [PlaceQuery(str(i), f"Place {i}", 0.0, float(i)) for i in range(5)]
    worker = describer(tmp_path, server, lmm_max_requests=2, lmm_max_concurrency=1)
    with pytest.raises(LmmBudgetExceeded, match=r"text\.lmm_max_requests = 2") as raised:
        worker.describe(queries)
    assert "This run got 2 new answers" in str(raised.value)
    assert len(server.requests) == 2
    rerun = describer(tmp_path, server, lmm_max_requests=10)
    assert len(rerun.describe(queries)) == 5
    assert len(server.requests) == 5  # only the three missing ones were asked
    assert rerun.stats.cache_hits == 2


def test_image_is_sent_when_asked(tmp_path, server):
    query = replace(QUERIES[0], image=b"\xff\xd8fake-jpeg", image_mime="image/jpeg")
    describer(tmp_path, server, lmm_send_image=True).describe([query])
    content = server.requests[0]["messages"][0]["content"]
    assert content[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")


def test_missing_key_names_the_variable(tmp_path, server, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(LmmError, match=f"environment variable {KEY_ENV}"):
        describer(tmp_path, server)
