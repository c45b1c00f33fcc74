"""n answers per prompt from a backend, under a disk cache, a budget, retries and a thread pool.

Per prompt: its n answer keys are looked up in the cache; the missing ones are asked for in one
request with n = how many are missing. Each answer is written to the cache the moment its
response arrives, so a run killed at any point keeps every finished answer and a rerun asks
only for the rest (an immediate rerun asks nothing).

- Fewer choices than asked: the shortfall is counted and the rest is asked for again, as
  long as the budget and the prompt's max_retries allow; what is still missing then is
  recorded (samples_missing), never invented.
- 429, 5xx, timeouts, dropped connections and broken bodies: retried up to max_retries
  times per prompt, exponential backoff with jitter, the server's Retry-After honoured.
- A refusal of this prompt only (e.g. HTTP 400): counted, the run goes on.
- A refusal of every prompt (bad key, unknown model): the run stops sending, keeps what it
  has, and says so (stopped_reason); the caller decides whether that is an error.
- Budget (requests and tokens): when spent, no new request starts; requests in flight finish
  and are kept; budget_exhausted is set and unanswered prompts are counted, nothing raises.
Answers come back as raw text: parsing (and its drop counts) happens downstream, so a parser
change never needs a new request.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from geoloc_core.kill_point import kill_point
from geoloc_core.lmm.answers import MAX_ANSWER_CHARS
from geoloc_core.lmm.backend import Backend, Completion, Failure
from geoloc_core.lmm.budget import RunBudget
from geoloc_core.lmm.cache import JsonRecordCache, prompt_key, sample_key
from geoloc_core.lmm.retry import backoff_delay, retry_after_s
from geoloc_core.lmm.settings import LmmSettings

Messages = list[dict[str, Any]]
QUEUE_PER_WORKER = 4  # prompts built ahead per worker: bounds the images held in memory


@dataclass(frozen=True)
class PromptJob:
    """One prompt; `build` makes its messages when a worker takes it (images read lazily)."""

    tag: Any
    build: Callable[[], Messages]


@dataclass(frozen=True)
class JobResult:
    tag: Any
    texts: list[str | None]  # n entries; None = not answered in this run (nor cached)
    problem: str = ""  # why answers are missing: "" | budget | stopped | a failure label


@dataclass
class RunStats:
    prompts: int = 0
    prompts_complete: int = 0
    prompts_unanswered: int = 0  # prompts with fewer than n answers after this run
    prompts_failed: int = 0  # gave up on after retries or a refusal
    prompts_unbuildable: int = 0  # messages could not be built (e.g. unreadable image)
    samples_expected: int = 0
    samples_missing: int = 0
    cache_hits: int = 0  # answers served from the cache
    answers_new: int = 0  # answers received in this run
    requests: int = 0  # requests sent, retries included
    retries: int = 0
    shortfall_requests: int = 0  # re-requests for choices a server did not return
    choices_shortfall: int = 0  # choices asked for but not returned
    tokens_in: int = 0
    tokens_out: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    budget_exhausted: bool = False
    stopped_reason: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def error(self, label: str) -> None:
        with self._lock:
            self.errors[label] += 1

    def as_dict(self) -> dict[str, Any]:
        values = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if not name.startswith("_") and name != "errors"
        }
        values["errors"] = dict(sorted(self.errors.items()))
        return values


class SampleRunner:
    """Runs prompt jobs on one backend; one instance per run (it holds the budget)."""

    def __init__(
        self,
        settings: LmmSettings,
        backend: Backend,
        cache: JsonRecordCache | None,
        concurrency: int | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.cache = cache
        self.concurrency = max(
            1, min(concurrency or settings.max_concurrency, backend.max_concurrency)
        )
        self.budget = RunBudget(settings.max_requests, settings.max_tokens_total)
        self.stats = RunStats()
        self._stop = threading.Event()

    # -- the pool ------------------------------------------------------------------------
    def run(self, jobs: Iterable[PromptJob]) -> Iterator[JobResult]:
        """Results as prompts finish (not in job order); every job yields exactly one."""
        pending: set[Future[JobResult]] = set()
        limit = self.concurrency * QUEUE_PER_WORKER
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="lmm") as pool:
            for job in jobs:
                if len(pending) >= limit:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    yield from (future.result() for future in done)
                pending.add(pool.submit(self._answer, job))
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (future.result() for future in done)

    # -- one prompt ----------------------------------------------------------------------
    def _answer(self, job: PromptJob) -> JobResult:
        n = self.settings.n
        self.stats.add(prompts=1, samples_expected=n)
        try:
            messages = job.build()
        except Exception as exc:  # an unreadable image must not end the run
            self.stats.add(prompts_unbuildable=1, prompts_unanswered=1, samples_missing=n)
            self.stats.error(f"prompt not built: {type(exc).__name__}")
            return JobResult(job.tag, [None] * n, "unbuildable")
        base = prompt_key(
            self.backend.provider,
            self.backend.model,
            messages,
            self.settings.temperature,
            self.settings.max_tokens,
            self.settings.image_detail,
        )
        keys = [sample_key(base, index) for index in range(n)]
        texts = [self._cached(key) for key in keys]
        missing = [index for index, text in enumerate(texts) if text is None]
        self.stats.add(cache_hits=n - len(missing))
        problem = self._ask(messages, base, keys, texts, missing) if missing else ""
        unanswered = sum(text is None for text in texts)
        if unanswered:
            self.stats.add(prompts_unanswered=1, samples_missing=unanswered)
        else:
            self.stats.add(prompts_complete=1)
        return JobResult(job.tag, texts, problem)

    def _cached(self, key: str) -> str | None:
        if self.cache is None:
            return None
        record = self.cache.get(key)
        text = None if record is None else record.get("text")
        return text if isinstance(text, str) else None

    def _ask(
        self,
        messages: Messages,
        base: str,
        keys: list[str],
        texts: list[str | None],
        missing: list[int],
    ) -> str:
        """Fill texts[missing] from the backend; returns why some stay None ("" if none)."""
        failures = 0
        while missing:
            if self._stop.is_set():
                return "stopped"
            if not self.budget.spend_request():
                self.stats.budget_exhausted = True
                return "budget"
            self.stats.add(requests=1)
            try:
                completion = self.backend.complete(messages, len(missing), _seed(base, missing))
            except Exception as exc:
                verdict = self.backend.classify(exc)
                if verdict is None:
                    raise
                kind, label = verdict
                self.stats.error(label)
                if kind is Failure.FATAL:
                    self._stop.set()
                    self.stats.stopped_reason = label
                    return label
                if kind is Failure.PROMPT or failures >= self.settings.max_retries:
                    self.stats.add(prompts_failed=1)
                    return label
                failures += 1
                self.stats.add(retries=1)
                delay = backoff_delay(failures - 1, self.settings.backoff_s, retry_after_s(exc))
                self._stop.wait(delay)
                continue
            got = self._store(completion, keys, texts, missing)
            missing = missing[got:]
            if missing:
                self.stats.add(choices_shortfall=len(missing))
                if failures >= self.settings.max_retries:
                    return "fewer choices than asked"
                failures += 1
                self.stats.add(shortfall_requests=1)
        return ""

    def _store(
        self,
        completion: Completion,
        keys: list[str],
        texts: list[str | None],
        missing: list[int],
    ) -> int:
        """Cache each returned answer at once; returns how many missing answers it filled."""
        tokens = completion.input_tokens + completion.output_tokens
        self.budget.add_tokens(tokens)
        self.stats.add(tokens_in=completion.input_tokens, tokens_out=completion.output_tokens)
        got = [_bounded(text) for text in completion.texts[: len(missing)]]
        for index, text in zip(missing, got, strict=False):
            texts[index] = text
            if self.cache is not None:
                record = {
                    "provider": self.backend.provider,
                    "model": self.backend.model,
                    "sample": index,
                    "text": text,
                }
                self.cache.put(keys[index], record)
                kill_point("lmm-answer-cached")
        self.stats.add(answers_new=len(got))
        return len(got)

    def estimated_cost(self) -> float:
        return self.backend.cost(self.stats.tokens_in, self.stats.tokens_out)


def _bounded(text: str) -> str:
    """An answer as kept in memory and in the cache: one longer than the parser accepts is cut
    just past that limit, so it still parses as too_long, and a 10 MB answer costs 16 KB."""
    return text if len(text) <= MAX_ANSWER_CHARS else text[: MAX_ANSWER_CHARS + 1]


def _seed(base: str, missing: list[int]) -> int:
    """A sampling seed for local backends: fixed per prompt and first missing answer."""
    return (int(base[:12], 16) + missing[0]) % (2**63)
