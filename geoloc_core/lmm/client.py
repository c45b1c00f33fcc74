"""The OpenAI-compatible backend: chat completions with n answers per request.

The API key is read from the environment variable `api_key_env` names when the backend is
built, and handed to the openai client only: it is not part of any cache key, record, label
or log line. The client's own retries are off (max_retries=0): the runner retries, so that
every attempt is counted and spends budget.
"""

from __future__ import annotations

import json
import os
from typing import Any

import openai

from geoloc_core.lmm.backend import Completion, Failure, MalformedResponse
from geoloc_core.lmm.errors import LmmStageError
from geoloc_core.lmm.settings import LmmSettings
from geoloc_core.lmm.transient import TRANSIENT_ERRORS

# A 200 whose body is not a chat completion (truncated JSON, an HTML error page): transient.
_BROKEN_BODY = (openai.APIResponseValidationError, json.JSONDecodeError, MalformedResponse)
_FATAL = (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError)


def api_key(settings: LmmSettings) -> str:
    key = os.environ.get(settings.api_key_env, "")
    if not key:
        raise LmmStageError(
            f"lmm.provider is openai but the environment variable {settings.api_key_env} "
            "(params lmm.api_key_env) is empty or unset: export the API key there (any "
            "non-empty value for a local server without authentication)"
        )
    return key


class OpenAIBackend:
    provider = "openai"

    def __init__(self, settings: LmmSettings, client: Any | None = None) -> None:
        self.settings = settings
        self.model = settings.model
        self.max_concurrency = settings.max_concurrency
        self.client = client or openai.OpenAI(
            base_url=settings.base_url,
            api_key=api_key(settings),
            timeout=settings.timeout_s,
            max_retries=0,
        )

    def complete(self, messages: list[dict[str, Any]], n: int, seed: int) -> Completion:
        del seed  # sampling on the server; its own seed parameter is not portable
        response = self.client.chat.completions.create(
            model=self.settings.model,
            messages=messages,
            n=n,
            temperature=self.settings.temperature,
            max_tokens=self.settings.max_tokens,
        )
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list):
            raise MalformedResponse("the response has no list of choices")
        choices = sorted(choices, key=lambda choice: getattr(choice, "index", 0) or 0)
        texts = [_content(choice) for choice in choices]
        usage = getattr(response, "usage", None)
        return Completion(
            texts=texts,
            input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        )

    def classify(self, exc: Exception) -> tuple[Failure, str] | None:
        label = type(exc).__name__
        if isinstance(exc, _FATAL):
            return Failure.FATAL, f"HTTP {exc.status_code}"
        if isinstance(exc, TRANSIENT_ERRORS):
            status = getattr(exc, "status_code", None)
            return Failure.TRANSIENT, f"HTTP {status}" if status else label
        if isinstance(exc, openai.APIStatusError):
            return Failure.PROMPT, f"HTTP {exc.status_code}"
        if isinstance(exc, _BROKEN_BODY):
            return Failure.TRANSIENT, "malformed response"
        return None

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (
            input_tokens / 1000 * self.settings.price_input_per_1k
            + output_tokens / 1000 * self.settings.price_output_per_1k
        )


def _content(choice: Any) -> str:
    content = getattr(getattr(choice, "message", None), "content", None)
    return content if isinstance(content, str) else ""
