"""What the runner needs from a model: n answers to one prompt, with token counts.

Two backends implement it: client.OpenAIBackend (any OpenAI-compatible server) and
local.TransformersBackend (a vision-language model in this process); `lmm_backend` gives the
configured one. The runner adds the cache, the budget, retries and concurrency around either,
so both share one code path.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from geoloc_core.lmm.settings import LmmSettings


@dataclass(frozen=True)
class Completion:
    texts: list[str]  # one per choice returned: may be fewer than asked
    input_tokens: int
    output_tokens: int


class MalformedResponse(Exception):
    """A 200 whose body is not a usable chat completion: retried like a 5xx."""


class Failure(StrEnum):
    """How the runner treats an exception a backend raised."""

    TRANSIENT = "transient"  # retry with backoff (429, 5xx, timeout, connection, broken body)
    PROMPT = "prompt"  # this prompt cannot be answered (e.g. HTTP 400): count it, go on
    FATAL = "fatal"  # no prompt can be (bad key, unknown model): stop the run


class Backend(Protocol):
    provider: str
    model: str
    max_concurrency: int  # upper bound on parallel calls this backend supports

    def complete(self, messages: list[dict[str, Any]], n: int, seed: int) -> Completion: ...

    def classify(self, exc: Exception) -> tuple[Failure, str] | None:
        """(treatment, short label such as "RateLimitError" or "HTTP 400") or None to raise.

        The label never holds the error's message: a server may echo the key back.
        """
        ...

    def cost(self, input_tokens: int, output_tokens: int) -> float: ...


def lmm_backend(settings: LmmSettings) -> Backend:
    """The configured model: an OpenAI-compatible server (its key read from the environment
    variable lmm.api_key_env, now) or a transformers checkpoint in this process."""
    if settings.provider == "openai":
        from geoloc_core.lmm.client import OpenAIBackend

        return OpenAIBackend(settings)
    from geoloc_core.lmm.local import TransformersBackend  # torch/transformers: only if used

    return TransformersBackend(settings)
