"""params.yaml section `lmm`: G3's geo-diversification and DualGeo's LMM step, validated.

Strict: every key is required and unknown keys are refused, so a typo never silently falls
back to a default. A bad value raises a one-line ValueError (ParamsError) naming the key and
what it may be. The API key is not a setting: `api_key_env` names the environment variable
that holds it, read when the stage runs, so params, MLflow and logs only see the name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from geoloc_core.params import ParamsError
from geoloc_core.section_fields import strict_values

SECTION = "lmm"
PROVIDERS = ("none", "openai", "transformers")
MODES = ("g3", "dualgeo")
DEVICES = ("auto", "cpu", "cuda")
IMAGE_DETAILS = ("low", "high", "auto")
MAX_RAG_SIZE = 100
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
JSON_WORDS = ("latitude", "longitude")
_FLOAT_KEYS = ("temperature", "backoff_s", "timeout_s", "price_input_per_1k", "price_output_per_1k")

# Which {placeholders} each template must and may use (other braces, e.g. a JSON example, stay
# literal text).
TEMPLATE_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "prompt_zero_shot": ((), ()),
    "prompt_rag": (("similar", "dissimilar"), ("similar", "dissimilar")),
    "prompt_dualgeo": ((), ("count",)),
}

ANSWER_FORMAT = (
    'Reply with JSON only, in decimal degrees: {"latitude": <number>, "longitude": <number>}'
)
DEFAULT_PROMPT_ZERO_SHOT = (
    "You are an expert in photo geolocation. Where on Earth was this photo taken? "
    "Look at the landscape, vegetation, architecture, roads, vehicles, signs and script, and "
    "give your best estimate even if you are unsure. " + ANSWER_FORMAT
)
DEFAULT_PROMPT_RAG = (
    "You are an expert in photo geolocation. Where on Earth was this photo taken? "
    "Geotagged photos that look like it were taken at these coordinates, so the image is "
    "probably close to these: {similar}, and far from these, where photos that look "
    "different were taken: {dissimilar}. Use them as hints, but trust what you see in the "
    "photo, and give your best estimate even if you are unsure. " + ANSWER_FORMAT
)
DEFAULT_PROMPT_DUALGEO = (
    "You are an expert in photo geolocation. The first photo was taken somewhere on Earth. "
    "The {count} candidates after it are places where geotagged photos that resemble it were "
    "taken, grouped by location and most likely first; each comes with its coordinates, its "
    "place name and one of those photos. Compare the first photo with the reference photos "
    "(landscape, vegetation, architecture, roads, signs, script) and decide where the first "
    "photo was taken: choose the candidate that fits best, or a point near it if the "
    "evidence points there. " + ANSWER_FORMAT
)

# The values params.yaml ships with (the papers' where they say, G3's code otherwise).
DEFAULTS: dict[str, Any] = {
    "provider": "none",
    "mode": "g3",
    "model": "gpt-4o",
    "base_url": "https://api.openai.com/v1",
    "api_key_env": "GEOLOC_LMM_API_KEY",
    "device": "auto",
    "prompt_zero_shot": DEFAULT_PROMPT_ZERO_SHOT,
    "prompt_rag": DEFAULT_PROMPT_RAG,
    "prompt_dualgeo": DEFAULT_PROMPT_DUALGEO,
    "g3_rag_sizes": [0, 5, 10, 15],
    "n": 5,
    "temperature": 1.2,
    "max_tokens": 200,
    "image_detail": "low",
    "dualgeo_top_m": 5,
    "max_concurrency": 8,
    "max_requests": 100_000,
    "max_tokens_total": 50_000_000,
    "max_retries": 5,
    "backoff_s": 1.0,
    "timeout_s": 60.0,
    "price_input_per_1k": 0.0025,
    "price_output_per_1k": 0.01,
    "cache_dir": "artifacts/cache/lmm_stage",
}


@dataclass(frozen=True)
class LmmSettings:
    provider: str  # none | openai | transformers
    mode: str  # g3 | dualgeo
    model: str  # API model name, or a transformers checkpoint (hub id or local folder)
    base_url: str  # OpenAI-compatible endpoint (provider openai)
    api_key_env: str  # NAME of the environment variable holding the key
    device: str  # auto | cpu | cuda (provider transformers)
    prompt_zero_shot: str
    prompt_rag: str  # {similar} and {dissimilar}: coordinate lists
    prompt_dualgeo: str  # may use {count}: how many candidates are shown
    g3_rag_sizes: tuple[int, ...]  # 0 = zero-shot; r = r similar + r dissimilar coordinates
    n: int  # answers per prompt
    temperature: float
    max_tokens: int  # per answer
    image_detail: str  # low | high | auto
    dualgeo_top_m: int  # re-ranked candidates shown with their reference photos
    max_concurrency: int
    max_requests: int  # per run, retries included
    max_tokens_total: int  # per run, input + output
    max_retries: int  # per request
    backoff_s: float
    timeout_s: float
    price_input_per_1k: float  # currency units per 1000 input tokens (cost estimate only)
    price_output_per_1k: float
    cache_dir: str  # relative to the project root

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> LmmSettings:
        values = strict_values(cls, section, SECTION)
        values["g3_rag_sizes"] = _rag_sizes(section["g3_rag_sizes"])  # as written, for its error
        for name in _FLOAT_KEYS:
            values[name] = _number(name, values[name])
        return cls(**values)

    def __post_init__(self) -> None:
        _choice("provider", self.provider, PROVIDERS)
        _choice("mode", self.mode, MODES)
        _choice("device", self.device, DEVICES)
        _choice("image_detail", self.image_detail, IMAGE_DETAILS)
        for name in ("model", "base_url", "cache_dir"):
            _text(name, getattr(self, name))
        if not isinstance(self.api_key_env, str) or not ENV_NAME.fullmatch(self.api_key_env):
            # The value is not echoed: it might be the key itself, pasted in the wrong place.
            raise ParamsError(
                f"params.yaml {SECTION}.api_key_env must be the NAME of an environment variable "
                "(letters, digits, _; e.g. GEOLOC_LMM_API_KEY), not the key; value not shown"
            )
        for name in TEMPLATE_FIELDS:
            _template(name, getattr(self, name))
        _whole("n", self.n, 1, 128)
        _whole("max_tokens", self.max_tokens, 1, 1_000_000)
        _whole("dualgeo_top_m", self.dualgeo_top_m, 1, 50)
        _whole("max_concurrency", self.max_concurrency, 1, 1024)
        _whole("max_requests", self.max_requests, 0, 10**12)
        _whole("max_tokens_total", self.max_tokens_total, 0, 10**15)
        _whole("max_retries", self.max_retries, 0, 100)
        _range("temperature", self.temperature, 0.0, 2.0)
        _range("backoff_s", self.backoff_s, 0.0, 600.0)
        _range("timeout_s", self.timeout_s, 0.001, 3600.0)
        _range("price_input_per_1k", self.price_input_per_1k, 0.0, 1e6)
        _range("price_output_per_1k", self.price_output_per_1k, 0.0, 1e6)

    def cache_path(self, project_root: Path) -> Path:
        """The answer cache folder (an absolute cache_dir stays as it is)."""
        return Path(project_root) / self.cache_dir

    def as_params(self) -> dict[str, Any]:
        """The section as plain values (what tracking logs): never the key, only its name."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["g3_rag_sizes"] = list(self.g3_rag_sizes)
        return values


def _fail(name: str, value: Any, rule: str) -> ParamsError:
    return ParamsError(f"params.yaml {SECTION}.{name}={value!r}: {rule}")


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise _fail(name, value, f"must be one of {list(allowed)}")


def _text(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise _fail(name, value, "must be a non-empty string")


def _whole(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(name, value, f"must be a whole number between {low} and {high}")
    if not low <= value <= high:
        raise _fail(name, value, f"must lie between {low} and {high}")


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(name, value, "must be a number")
    if not math.isfinite(value):
        raise _fail(name, value, "must be a finite number")
    return float(value)


def _range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise _fail(name, value, f"must lie between {low} and {high}")


def _rag_sizes(value: Any) -> tuple[int, ...]:
    rule = (
        f"must be a non-empty list of distinct whole numbers 0..{MAX_RAG_SIZE} "
        "(0 = zero-shot prompt, r = r similar + r dissimilar coordinates), e.g. [0, 5, 10, 15]"
    )
    if not isinstance(value, list | tuple) or not value:
        raise _fail("g3_rag_sizes", value, rule)
    for size in value:
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_RAG_SIZE:
            raise _fail("g3_rag_sizes", value, rule)
    if len(set(value)) != len(value):
        raise _fail("g3_rag_sizes", value, rule)
    return tuple(value)


def _template(name: str, value: Any) -> None:
    required, allowed = TEMPLATE_FIELDS[name]
    if not isinstance(value, str) or not value.strip():
        raise _fail(name, value, "must be a non-empty prompt text")
    used = set(PLACEHOLDER.findall(value))
    unknown = sorted(used - set(allowed))
    absent = [field for field in required if field not in used]
    if unknown or absent:
        shown = [f"{{{field}}}" for field in allowed] or "none"
        raise ParamsError(
            f"params.yaml {SECTION}.{name}: placeholders allowed {shown}, required "
            f"{[f'{{{field}}}' for field in required]}; "
            + (f"unknown {unknown}" if unknown else f"missing {absent}")
        )
    lowered = value.lower()
    if not all(word in lowered for word in JSON_WORDS):
        raise ParamsError(
            f"params.yaml {SECTION}.{name}: must ask for the JSON answer "
            '{"latitude": ..., "longitude": ...} (both words must appear in the prompt)'
        )
