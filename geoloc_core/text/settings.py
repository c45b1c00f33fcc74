"""params.yaml section `text`: how place texts are made (the only section place_texts reads).

The API key is not a setting: `lmm_api_key_env` names the environment variable that holds it,
so params, MLflow params and logs only ever see the variable's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geoloc_core.data.schema import PLACE_FIELDS
from geoloc_core.data.settings import setting
from geoloc_core.params import ParamsError
from geoloc_core.text.captions import template_fields
from geoloc_core.text.geocoder import GeocoderSettings

SECTION = "text"
PROVIDERS = ("none", "openai")
CAPTION_SOURCES = ("template", "description")


@dataclass(frozen=True)
class LmmSettings:
    base_url: str
    model: str
    api_key_env: str
    prompt: str
    send_image: bool
    max_concurrency: int
    max_requests: int
    max_retries: int
    backoff_s: float
    timeout_s: float
    temperature: float
    max_tokens: int
    cache_dir: Path


@dataclass(frozen=True)
class TextSettings:
    provider: str
    caption_template: str
    caption_fallback: str
    caption_from: str
    geocoder: GeocoderSettings
    lmm: LmmSettings | None  # None when provider is "none"

    @classmethod
    def from_params(cls, cfg: Mapping[str, Any], project_root: Path) -> TextSettings:
        def get(key: str) -> Any:
            return setting(cfg, key, SECTION)

        provider = str(get("provider"))
        if provider not in PROVIDERS:
            raise ParamsError(f"params.yaml text.provider '{provider}' is not one of {PROVIDERS}")
        caption_from = str(get("caption_from"))
        if caption_from not in CAPTION_SOURCES:
            raise ParamsError(
                f"params.yaml text.caption_from '{caption_from}' is not one of {CAPTION_SOURCES}"
            )
        if caption_from == "description" and provider == "none":
            raise ParamsError(
                "params.yaml text.caption_from is 'description' but text.provider is 'none': "
                "descriptions come from the LMM; set provider: openai or caption_from: template"
            )
        template = str(get("caption_template"))
        try:
            unknown = sorted(set(template_fields(template)) - set(PLACE_FIELDS))
        except ValueError as exc:
            raise ParamsError(f"params.yaml text.caption_template: {exc}") from exc
        if unknown:
            raise ParamsError(
                f"params.yaml text.caption_template uses {unknown}; it may use only the place "
                f"fields {list(PLACE_FIELDS)}"
            )
        geocoder = GeocoderSettings(
            city_min_population=int(get("city_min_population")),
            city_km_per_sqrt_million=float(get("city_km_per_sqrt_million")),
            max_place_km=float(get("max_place_km")),
        )
        lmm = _lmm_settings(get, project_root) if provider == "openai" else None
        return cls(provider, template, str(get("caption_fallback")), caption_from, geocoder, lmm)


def _lmm_settings(get: Any, project_root: Path) -> LmmSettings:
    settings = LmmSettings(
        base_url=str(get("lmm_base_url")),
        model=str(get("lmm_model")),
        api_key_env=str(get("lmm_api_key_env")),
        prompt=str(get("lmm_prompt")),
        send_image=bool(get("lmm_send_image")),
        max_concurrency=int(get("lmm_max_concurrency")),
        max_requests=int(get("lmm_max_requests")),
        max_retries=int(get("lmm_max_retries")),
        backoff_s=float(get("lmm_backoff_s")),
        timeout_s=float(get("lmm_timeout_s")),
        temperature=float(get("lmm_temperature")),
        max_tokens=int(get("lmm_max_tokens")),
        cache_dir=project_root / str(get("lmm_cache_dir")),
    )
    if settings.max_concurrency < 1 or settings.max_requests < 0 or settings.max_retries < 0:
        raise ParamsError(
            "params.yaml text.lmm_max_concurrency must be >= 1 and text.lmm_max_requests, "
            "text.lmm_max_retries >= 0"
        )
    return settings
