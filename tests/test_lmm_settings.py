"""The `lmm` params section (strict, one-line errors that name the key) and the prompts built
from it (OpenAI format, images as data URLs with the detail setting, JSON asked for)."""

from __future__ import annotations

import base64
import copy
import io

import pytest
import yaml
from PIL import Image

from geoloc_core.lmm.prompts import (
    Candidate,
    dualgeo_messages,
    fill,
    g3_rag_messages,
    g3_zero_shot_messages,
    image_data_url,
    prompt_text,
)
from geoloc_core.lmm.settings import DEFAULTS, LmmSettings
from geoloc_core.params import ParamsError
from tests.conftest import REPO


def section(**overrides) -> dict:
    return copy.deepcopy(DEFAULTS) | overrides


def test_defaults_parse():
    settings = LmmSettings.from_section(section())
    assert settings.provider == "none" and settings.mode == "g3"
    assert settings.g3_rag_sizes == (0, 5, 10, 15)
    assert (settings.n, settings.temperature, settings.image_detail) == (5, 1.2, "low")
    assert settings.as_params()["api_key_env"] == "GEOLOC_LMM_API_KEY"


def test_params_yaml_lmm_section_parses_once_wired():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    if "lmm" not in params:
        pytest.skip("params.yaml has no lmm section yet")
    LmmSettings.from_section(params["lmm"])


def test_missing_and_unknown_keys_are_named():
    values = section(temprature=1.0)
    del values["n"]
    with pytest.raises(ParamsError) as raised:
        LmmSettings.from_section(values)
    message = str(raised.value)
    assert "missing ['n']" in message and "unknown ['temprature']" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("provider", "anthropic", "lmm.provider='anthropic': must be one of ['none', 'openai'"),
        ("mode", "both", "must be one of ['g3', 'dualgeo']"),
        ("device", "gpu", "must be one of ['auto', 'cpu', 'cuda']"),
        ("image_detail", "medium", "must be one of ['low', 'high', 'auto']"),
        ("n", 0, "lmm.n=0: must be an int >= 1 and <= 128"),
        ("n", 2.5, "lmm.n=2.5: must be an int"),
        ("n", True, "lmm.n=True: must be an int"),
        ("temperature", "hot", "lmm.temperature='hot': must be a finite number"),
        ("temperature", 3.0, "lmm.temperature=3.0: must be a finite number >= 0.0 and <= 2.0"),
        ("timeout_s", 0, "lmm.timeout_s=0: must be a finite number >= 0.001"),
        ("max_concurrency", 0, "lmm.max_concurrency=0: must be an int >= 1 and <= 1024"),
        ("max_requests", -1, "lmm.max_requests=-1: must be an int >= 0"),
        ("price_input_per_1k", float("nan"), "must be a finite number"),
        ("g3_rag_sizes", [0, 5, 5], "lmm.g3_rag_sizes=[0, 5, 5]: must be a non-empty list"),
        ("g3_rag_sizes", [], "g3_rag_sizes=[]: must be a non-empty list"),
        ("g3_rag_sizes", 5, "g3_rag_sizes=5: must be a non-empty list"),
        ("g3_rag_sizes", [0, -5], "must be a non-empty list, each an int >= 0 and <= 100"),
        ("model", "", "lmm.model='': must be a non-empty string"),
        ("prompt_rag", "Near {similar}. Give latitude, longitude.", "missing ['dissimilar']"),
        ("prompt_zero_shot", "Where? {place} latitude longitude", "unknown ['place']"),
        ("prompt_zero_shot", "Where was this taken?", "must ask for the JSON answer"),
    ],
)
def test_bad_values_raise_one_line_naming_key_and_allowed(key, value, expected):
    with pytest.raises(ValueError) as raised:
        LmmSettings.from_section(section(**{key: value}))
    message = str(raised.value)
    assert expected in message
    assert f"lmm.{key}" in message and "\n" not in message


def test_a_key_pasted_into_api_key_env_is_not_echoed():
    with pytest.raises(ParamsError) as raised:
        LmmSettings.from_section(section(api_key_env="sk-geoloc-FAKE-0123456789"))
    assert "sk-geoloc-FAKE" not in str(raised.value)
    assert "lmm.api_key_env" in str(raised.value)


def png_bytes(colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_g3_prompts_carry_the_image_with_detail_and_ask_for_json():
    settings = LmmSettings.from_section(section(image_detail="high"))
    url = image_data_url(png_bytes())
    assert url.startswith("data:image/png;base64,")
    zero = g3_zero_shot_messages(settings, url)
    assert zero[0]["role"] == "user"
    text, image = zero[0]["content"]
    assert image == {"type": "image_url", "image_url": {"url": url, "detail": "high"}}
    assert '{"latitude": <number>, "longitude": <number>}' in text["text"]
    rag = g3_rag_messages(settings, url, [(48.85661, 2.35222), (45.76, 4.84)], [(-33.87, 151.2)])
    words = prompt_text(rag)
    assert "close to these: (48.8566, 2.3522), (45.7600, 4.8400), and far from these" in words
    assert "were taken: (-33.8700, 151.2000)." in words
    assert '{"latitude": <number>' in words  # the template's JSON braces stay text


def test_dualgeo_prompt_shows_each_candidate_with_photo_coordinates_and_place():
    settings = LmmSettings.from_section(section(mode="dualgeo"))
    query = image_data_url(png_bytes())
    reference = image_data_url(png_bytes((10, 120, 10)))
    candidates = [
        Candidate(45.764, 4.8357, "Lyon, Auvergne-Rhône-Alpes, France", reference),
        Candidate(43.2965, 5.3698, "", reference),
        Candidate(44.8378, -0.5792, "Bordeaux, France", None),
    ]
    content = dualgeo_messages(settings, query, candidates)[0]["content"]
    images = [p["image_url"]["url"] for p in content if p["type"] == "image_url"]
    assert images == [query, reference, reference]
    texts = [p["text"] for p in content if p["type"] == "text"]
    assert texts[0] == "Photo to locate:"
    assert texts[1] == (
        "Candidate 1: (45.7640, 4.8357), Lyon, Auvergne-Rhône-Alpes, France. A photo taken there:"
    )
    assert "Candidate 2: (43.2965, 5.3698), place name unknown." in texts[2]
    assert texts[3].endswith("(No reference photo available.)")
    assert "The 3 candidates" in texts[4] and '"longitude"' in texts[4]


def test_other_image_formats_are_reencoded_as_jpeg():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buffer, format="BMP")
    url = image_data_url(buffer.getvalue())
    assert url.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(url.split(",", 1)[1])[:3] == b"\xff\xd8\xff"


def test_fill_leaves_unknown_braces_alone():
    assert fill('{a} and {"x": 1} and {b}', {"a": "A"}) == 'A and {"x": 1} and {b}'
