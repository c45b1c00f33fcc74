"""Optional LMM enrichment: a richer description per image from any OpenAI-compatible server.

- answers are cached on disk by a hash of the request (lmm_cache.py): a re-run sends nothing;
- at most `max_concurrency` requests are in flight (a thread pool);
- 429, 5xx, timeouts and dropped connections are retried with exponential backoff and jitter
  (or the server's Retry-After), up to `max_retries` times per row (lmm/retry.py);
- every request sent, retries included, spends one unit of a budget; when it runs out the run
  stops with an error saying how far it got (answers so far stay cached), rows are never
  filled with anything else;
- the API key is read from the environment variable the params name, handed to the client and
  nowhere else: it is not part of the cache key, the messages, the errors or the logs.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import openai

from geoloc_core.kill_point import kill_point
from geoloc_core.lmm.budget import RequestBudget
from geoloc_core.lmm.retry import retry_delay
from geoloc_core.lmm.transient import TRANSIENT_ERRORS
from geoloc_core.params import ParamsError
from geoloc_core.text.captions import template_fields
from geoloc_core.text.lmm_cache import ResponseCache, request_key
from geoloc_core.text.settings import LmmSettings

PROMPT_FIELDS = ("place", "lat", "lon")


class LmmError(RuntimeError):
    """The LMM step cannot finish; the message says why and what to do."""


class LmmBudgetExceeded(LmmError):
    pass


@dataclass(frozen=True)
class PlaceQuery:
    """What the LMM is told about one image."""

    id: str
    place: str
    lat: float
    lon: float
    image: bytes | None = None
    image_mime: str = "image/jpeg"


@dataclass
class LmmStats:
    requests: int = 0
    retries: int = 0
    cache_hits: int = 0
    answered: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_metrics(self) -> dict[str, int]:
        return {
            "lmm_requests": self.requests,
            "lmm_retries": self.retries,
            "lmm_cache_hits": self.cache_hits,
            "lmm_answered": self.answered,
        }


def check_prompt(prompt: str) -> None:
    unknown = sorted(set(template_fields(prompt)) - set(PROMPT_FIELDS))
    if unknown:
        raise ParamsError(
            f"params.yaml text.lmm_prompt uses {unknown}; it may use only {list(PROMPT_FIELDS)}"
        )


def build_request(query: PlaceQuery, settings: LmmSettings) -> dict[str, Any]:
    """The chat-completion request for one image (also what its cache key hashes)."""
    text = settings.prompt.format(
        place=query.place, lat=f"{query.lat:.4f}", lon=f"{query.lon:.4f}"
    )
    content: str | list[dict[str, Any]] = text
    if settings.send_image and query.image is not None:
        encoded = base64.b64encode(query.image).decode("ascii")
        data_url = f"data:{query.image_mime};base64,{encoded}"
        content = [
            {"type": "text", "text": text},
            {"type": "image_url", "image_url": {"url": data_url}},
        ]
    return {
        "model": settings.model,
        "messages": [{"role": "user", "content": content}],
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
    }


def client_from_environment(settings: LmmSettings) -> openai.OpenAI:
    """An OpenAI client for the configured base URL, its key read from the environment."""
    key = os.environ.get(settings.api_key_env, "")
    if not key:
        raise LmmError(
            f"text.provider is openai but the environment variable {settings.api_key_env} "
            "(params text.lmm_api_key_env) is empty or unset: export the API key there"
        )
    return openai.OpenAI(
        base_url=settings.base_url, api_key=key, timeout=settings.timeout_s, max_retries=0
    )


class LmmDescriber:
    """Describes places with an LMM under a cache, a concurrency bound, retries and a budget."""

    def __init__(
        self,
        settings: LmmSettings,
        client: Any,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        check_prompt(settings.prompt)
        self.settings = settings
        self.client = client
        self.cache = ResponseCache(settings.cache_dir)
        self.budget = RequestBudget(settings.max_requests)
        self.stats = LmmStats()
        self._sleep = sleep

    def describe(self, queries: Sequence[PlaceQuery]) -> list[str]:
        """One description per query, in order; raises LmmError if any cannot be had."""
        requests = [build_request(q, self.settings) for q in queries]
        keys = [request_key(r) for r in requests]
        answers: dict[str, str] = {}
        missing: dict[str, tuple[PlaceQuery, dict[str, Any]]] = {}
        for query, request, key in zip(queries, requests, keys, strict=True):
            cached = answers.get(key) or self.cache.get(key)
            if cached is not None:
                answers[key] = cached
                self.stats.add(cache_hits=1)
            elif key not in missing:
                missing[key] = (query, request)
        if missing:
            self._ask_all(missing, answers)
        return [answers[key] for key in keys]

    def _ask_all(
        self,
        missing: Mapping[str, tuple[PlaceQuery, dict[str, Any]]],
        answers: dict[str, str],
    ) -> None:
        pool = ThreadPoolExecutor(max_workers=self.settings.max_concurrency)
        futures = {
            pool.submit(self._ask, query, request): key
            for key, (query, request) in missing.items()
        }
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        for future in done | pending:
            if future.done() and not future.cancelled() and future.exception() is None:
                answers[futures[future]] = future.result()
        failures = [f.exception() for f in done if f.exception() is not None]
        if failures:
            first = failures[0]
            if isinstance(first, LmmBudgetExceeded):
                raise LmmBudgetExceeded(
                    f"{first} This run got {self.stats.answered} new answers and reused "
                    f"{self.stats.cache_hits} cached ones; the new ones are cached too, so a "
                    "re-run continues from here."
                ) from first
            raise first

    def _ask(self, query: PlaceQuery, request: dict[str, Any]) -> str:
        key = request_key(request)
        for attempt in range(self.settings.max_retries + 1):
            if not self.budget.spend():
                raise LmmBudgetExceeded(
                    f"LMM request budget exhausted (params text.lmm_max_requests = "
                    f"{self.settings.max_requests}); raise it to describe the remaining rows."
                )
            self.stats.add(requests=1)
            try:
                completion = self.client.chat.completions.create(**request)
            except TRANSIENT_ERRORS as exc:
                if attempt == self.settings.max_retries:
                    raise LmmError(
                        f"LMM request for image {query.id} failed {attempt + 1} times, last "
                        f"with {type(exc).__name__}; the server at {self.settings.base_url} "
                        "is overloaded or unreachable: retry later or raise "
                        "text.lmm_max_retries"
                    ) from None  # the server's error body is not echoed: it may quote the key
                self.stats.add(retries=1)
                self._sleep(retry_delay(attempt, self.settings.backoff_s, exc))
                continue
            except openai.APIStatusError as exc:
                raise LmmError(
                    f"LMM request for image {query.id} was refused with HTTP "
                    f"{exc.status_code} by {self.settings.base_url}: check text.lmm_model, "
                    f"text.lmm_base_url and the key in ${self.settings.api_key_env}"
                ) from None  # the server's error body is not echoed: it may quote the key
            text = (completion.choices[0].message.content or "").strip()
            if not text:
                raise LmmError(
                    f"the LMM gave an empty answer for image {query.id}; nothing was written "
                    "for it (check text.lmm_prompt and text.lmm_max_tokens)"
                )
            self.cache.put(key, self.settings.model, text)
            kill_point("place-text-cached")
            self.stats.add(answered=1)
            return text
        raise AssertionError("unreachable: the loop returns or raises")
