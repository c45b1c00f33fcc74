"""params.yaml section `lmm`: G3's geo-diversification and DualGeo's LMM step, validated.

Strict: every key is required and unknown keys are refused, so a typo never silently falls
back to a default. A bad value raises a one-line ValueError (ParamsError) naming the key and
what it may be. The API key is not a setting: `api_key_env` names the environment variable
that holds it, read when the stage runs, so params, MLflow and logs only see the name.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from geoloc_core.section_model import URL, SectionModel, real, text, whole

SECTION = "lmm"
PROVIDERS = ("none", "openai", "transformers")
MODES = ("g3", "dualgeo")
DEVICES = ("auto", "cpu", "cuda")
IMAGE_DETAILS = ("low", "high", "auto")
MAX_RAG_SIZE = 100
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
JSON_WORDS = ("latitude", "longitude")

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


def _rag_sizes(sizes: tuple[int, ...]) -> tuple[int, ...]:
    if not sizes or len(set(sizes)) != len(sizes):
        raise ValueError(
            f"must be a non-empty list of distinct whole numbers 0..{MAX_RAG_SIZE} "
            "(0 = zero-shot prompt, r = r similar + r dissimilar coordinates), e.g. [0, 5, 10, 15]"
        )
    return sizes


def _template(name: str) -> Any:
    """A prompt text whose {placeholders} are the ones TEMPLATE_FIELDS gives name."""

    def check(value: str) -> str:
        required, allowed = TEMPLATE_FIELDS[name]
        used = set(PLACEHOLDER.findall(value))
        unknown = sorted(used - set(allowed))
        absent = [field for field in required if field not in used]
        if unknown or absent:
            shown = [f"{{{field}}}" for field in allowed] or "none"
            raise ValueError(
                f"placeholders allowed {shown}, required "
                f"{[f'{{{field}}}' for field in required]}; "
                + (f"unknown {unknown}" if unknown else f"missing {absent}")
            )
        lowered = value.lower()
        if not all(word in lowered for word in JSON_WORDS):
            raise ValueError(
                'must ask for the JSON answer {"latitude": ..., "longitude": ...} (both words '
                "must appear in the prompt)"
            )
        return value

    return Annotated[text(), AfterValidator(check)]


RagSizes = Annotated[tuple[whole(ge=0, le=MAX_RAG_SIZE), ...], AfterValidator(_rag_sizes)]


class LmmSettings(SectionModel):
    """The LMM stage: G3's geo-diversification (asset lmm_diversification) or DualGeo's
    reasoning over the re-ranked candidates (asset lmm_reasoning); provider none skips it."""

    SECTION = SECTION

    provider: Literal[PROVIDERS] = Field(
        description="none | openai (any OpenAI-compatible server) | transformers"
    )
    mode: Literal[MODES] = Field(
        description="g3 (zero-shot + RAG prompts) | dualgeo (re-ranked candidates)"
    )
    model: text() = Field(
        description="API model name (G3: GPT-4V), or a transformers hub id / local checkpoint"
    )
    base_url: URL = Field(description="OpenAI-compatible endpoint (provider openai)")
    api_key_env: text(ENV_NAME_PATTERN) = Field(
        repr=False,  # never echoed in a refusal: it might be the key, pasted in the wrong place
        description="the NAME of the environment variable holding the key, never the key",
    )
    device: Literal[DEVICES] = Field(
        description="transformers only: auto (cuda fp16 when present) | cpu | cuda"
    )
    prompt_zero_shot: _template("prompt_zero_shot") = Field(
        description="G3's zero-shot prompt; must ask for latitude and longitude as JSON"
    )
    prompt_rag: _template("prompt_rag") = Field(
        description='G3\'s RAG prompt; {similar}, {dissimilar}: "(lat, lon), ..." in retrieval '
        "order"
    )
    prompt_dualgeo: _template("prompt_dualgeo") = Field(
        description="DualGeo's prompt after the photo and the candidates; {count}: how many"
    )
    g3_rag_sizes: RagSizes = Field(
        min_length=1,
        description="G3: 0 = zero-shot, r = r similar + r dissimilar coordinates "
        "(distinct, non-empty)"
    )
    n: whole(ge=1, le=128) = Field(
        description="answers per prompt (G3's code: 5 of each prompt join the pool)"
    )
    temperature: real(ge=0.0, le=2.0) = Field(description="sampling temperature (G3's code: 1.2)")
    max_tokens: whole(ge=1, le=1_000_000) = Field(description="per answer (G3's code: 200)")
    image_detail: Literal[IMAGE_DETAILS] = Field(description="low | high | auto (G3's code: low)")
    dualgeo_top_m: whole(ge=1, le=50) = Field(
        description="re-ranked candidates shown with their reference photos"
    )
    max_concurrency: whole(ge=1, le=1024) = Field(
        description="requests in flight (transformers: always 1)"
    )
    max_requests: whole(ge=0, le=10**12) = Field(description="budget per run, retries included")
    max_tokens_total: whole(ge=0, le=10**15) = Field(
        description="budget per run, input + output tokens"
    )
    max_retries: whole(ge=0, le=100) = Field(
        description="per prompt, on 429 / 5xx / timeouts / broken responses"
    )
    backoff_s: real(ge=0.0, le=600.0) = Field(
        description="exponential backoff with jitter; Retry-After wins"
    )
    timeout_s: real(ge=0.001, le=3600.0) = Field(description="per request, seconds")
    price_input_per_1k: real(ge=0.0, le=1e6) = Field(
        description="cost estimate only (per 1000 input tokens)"
    )
    price_output_per_1k: real(ge=0.0, le=1e6) = Field(
        description="cost estimate only (per 1000 output tokens)"
    )
    cache_dir: text() = Field(
        description="one JSON file per answer, relative to the project root; a rerun asks "
        "nothing twice"
    )

    def cache_path(self, project_root: Path) -> Path:
        """The answer cache folder (an absolute cache_dir stays as it is)."""
        return Path(project_root) / self.cache_dir

    def as_params(self) -> dict[str, Any]:
        """The section as plain values (what tracking logs): never the key, only its name."""
        return self.model_dump(mode="json")
