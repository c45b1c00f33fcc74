"""Every fault mode of the local server, through the real openai client and run_lmm_stage:
nothing crashes, each failure is counted, answers that can be kept are kept; Retry-After is
honoured; the request and token budgets stop a run cleanly and a rerun finishes it."""

from __future__ import annotations

import time

import pytest

from geoloc_core.lmm.answers import MAX_ANSWER_CHARS
from geoloc_core.lmm.errors import LmmStageError
from geoloc_core.lmm.retry import backoff_delay
from geoloc_core.lmm.stub_server import LmmStubServer
from geoloc_core.steps.lmm import run_lmm_stage
from tests.test_lmm_stage import (  # noqa: F401  (api_key is an autouse fixture)
    BENCHMARK,
    STAGE_KEY,
    api_key,
    make_project,
    quiet,
    read_answers,
    stage_section,
)

N = 3
PROMPTS = 2 * 2  # 2 queries x sizes 0 and 5


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path, queries=2, per_kind=5)


def run(project, server, **overrides) -> dict:
    section = stage_section(server, g3_rag_sizes=[0, 5], n=N, max_concurrency=1) | overrides
    return run_lmm_stage(project, BENCHMARK, section, progress=False, log=quiet)


@pytest.mark.parametrize(
    ("fault", "label"),
    [("429", "HTTP 429"), ("500", "HTTP 500"), ("malformed", "malformed response")],
)
def test_transient_failures_are_retried_and_counted(project, fault, label):
    with LmmStubServer(faults=[fault, fault]) as server:
        summary = run(project, server)
        assert server.stats()["faults"][fault] == 2
        assert server.stats()["requests"] == PROMPTS + 2
    assert summary["retries"] == 2 and summary["errors"] == {label: 2}
    assert summary["requests_sent"] == PROMPTS + 2
    assert summary["answers_kept"] == PROMPTS * N and summary["prompts_failed"] == 0


def test_a_hang_past_the_timeout_is_retried(project):
    with LmmStubServer(faults=["hang"], hang_s=10.0) as server:
        start = time.perf_counter()
        summary = run(project, server, timeout_s=0.5)
        assert time.perf_counter() - start < 5.0
        assert server.stats()["faults"]["hang"] == 1
    assert summary["errors"] == {"APITimeoutError": 1} and summary["retries"] == 1
    assert summary["answers_kept"] == PROMPTS * N


def test_persistent_failures_give_up_per_prompt_without_crashing(project):
    with LmmStubServer(always=["500"]) as server:
        summary = run(project, server, max_retries=2)
        assert server.stats()["requests"] == PROMPTS * 3
    assert summary["prompts_failed"] == PROMPTS and summary["prompts_unanswered"] == PROMPTS
    assert summary["errors"] == {"HTTP 500": PROMPTS * 3}
    assert summary["answers_kept"] == 0 and summary["samples_missing"] == PROMPTS * N
    assert read_answers(project).empty


@pytest.mark.parametrize(
    ("fault", "kept", "drops"),
    [
        ("prose", PROMPTS * N, {}),
        ("integer", PROMPTS * N, {}),
        ("out_of_range", 0, {"out_of_range": PROMPTS * N}),
    ],
)
def test_answer_faults_are_parsed_or_dropped_and_counted(project, fault, kept, drops):
    with LmmStubServer(always=[fault]) as server:
        summary = run(project, server)
    assert summary["answers_kept"] == kept
    assert {k: v for k, v in summary["drops"].items() if v} == drops
    assert summary["requests_sent"] == PROMPTS and summary["errors"] == {}
    answers = read_answers(project)
    if fault == "integer":
        assert (answers["lat"] == answers["lat"].round()).all()
    if fault == "out_of_range":
        assert answers.empty  # nothing clipped, nothing set to 0


def test_a_10_mb_answer_is_dropped_as_too_long_and_never_cached_whole(project):
    with LmmStubServer(always=["huge"]) as server:
        summary = run(project, server, n=1)
        again = run(project, server, n=1)
    assert summary["answers_kept"] == 0 and summary["errors"] == {}
    assert {k: v for k, v in summary["drops"].items() if v} == {"too_long": PROMPTS}
    assert read_answers(project).empty
    cached = sorted((project.root / "artifacts" / "cache" / "lmm_stage").rglob("*.json"))
    assert len(cached) == PROMPTS
    assert max(f.stat().st_size for f in cached) < 2 * MAX_ANSWER_CHARS  # not 10 MB each
    # read back from the cache, the cut answers are still too long, not a shorter valid one
    assert again["requests_sent"] == 0
    assert {k: v for k, v in again["drops"].items() if v} == {"too_long": PROMPTS}


def test_fewer_choices_than_asked_are_requested_again(project):
    with LmmStubServer(faults=["fewer_choices"]) as server:
        summary = run(project, server)
        assert server.stats()["requests"] == PROMPTS + 1
    assert summary["choices_shortfall"] == N - N // 2 and summary["shortfall_requests"] == 1
    assert summary["answers_kept"] == PROMPTS * N and summary["prompts_complete"] == PROMPTS


def test_fewer_choices_for_ever_are_recorded_not_invented(project):
    with LmmStubServer(always=["fewer_choices"]) as server:
        summary = run(project, server, n=4, max_retries=1)
    # per prompt: ask 4, get 2; ask 2, get 1; give up with 1 missing
    assert summary["answers_kept"] == PROMPTS * 3 and summary["samples_missing"] == PROMPTS
    assert summary["choices_shortfall"] == PROMPTS * (2 + 1)
    assert summary["prompts_unanswered"] == PROMPTS


def test_retry_after_is_honoured(project):
    with LmmStubServer(faults=["429"], retry_after_s=0.6) as server:
        start = time.perf_counter()
        summary = run(project, server, backoff_s=0.0, g3_rag_sizes=[0])
        elapsed = time.perf_counter() - start
    assert summary["retries"] == 1 and elapsed >= 0.6


def test_backoff_grows_with_jitter_and_respects_retry_after():
    for attempt in range(5):
        delays = [backoff_delay(attempt, 1.0) for _ in range(200)]
        assert 2**attempt / 2 <= min(delays) and max(delays) <= 2**attempt
        assert len(set(delays)) > 1  # jittered
    assert 3.0 <= backoff_delay(0, 1.0, retry_after=3.0) <= 3.1
    assert backoff_delay(30, 1.0) <= 60.0


def test_a_refused_key_stops_the_run_and_keeps_the_answers(project):
    with LmmStubServer() as server:
        first = run(project, server, g3_rag_sizes=[0])  # two prompts answered, cached
        server.set_faults(always=["401"])
        with pytest.raises(LmmStageError, match=r"refused the requests \(HTTP 401\)") as raised:
            run(project, server)
        assert server.stats()["faults"]["401"] == 1  # stopped at once, not per prompt
    assert STAGE_KEY not in str(raised.value)
    assert first["answers_kept"] == 2 * N
    assert len(read_answers(project)) == 2 * N  # the cached zero-shot answers are written


def test_request_budget_stops_cleanly_and_a_rerun_finishes(project):
    with LmmStubServer() as server:
        logs: list[str] = []
        section = stage_section(server, g3_rag_sizes=[0, 5], n=N, max_concurrency=1)
        short = run_lmm_stage(
            project, BENCHMARK, section | {"max_requests": 3}, progress=False, log=logs.append
        )
        assert short["budget_exhausted"] is True and short["prompts_unanswered"] == 1
        assert short["requests_sent"] == 3 and short["answers_kept"] == 3 * N
        assert len(read_answers(project)) == 3 * N
        assert "BUDGET EXHAUSTED: 1 prompts unanswered" in logs[-1]
        full = run_lmm_stage(project, BENCHMARK, section, progress=False, log=quiet)
        assert server.stats()["requests"] == PROMPTS
    assert full["budget_exhausted"] is False and full["requests_sent"] == 1
    assert full["cache_hits"] == 3 * N and full["answers_kept"] == PROMPTS * N


def test_token_budget_stops_cleanly(project):
    with LmmStubServer() as server:
        summary = run(project, server, max_tokens_total=1)
        assert server.stats()["requests"] == 1  # the first response spent the budget
    assert summary["budget_exhausted"] is True and summary["prompts_unanswered"] == PROMPTS - 1
    assert summary["answers_kept"] == N and summary["tokens_in"] + summary["tokens_out"] > 1
