"""The params this data layer reads: the proposed sections (tests merge them into tiny params
until params.yaml carries them) and a check that params.yaml, once wired, has every key."""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.conftest import REPO

PROPOSED = yaml.safe_load(
    """
data:
  root: data/raw/demo
  source: demo
  validation_fraction: 0.01
  mp16pro_csv: data/raw/mp16pro/MP16_Pro_places365.csv
  mp16pro_archives: [data/raw/mp16pro/mp-16-images*.tar]
  im2gps3k_csv: data/raw/im2gps3k/im2gps3k_places365.csv
  im2gps3k_images: data/raw/im2gps3k/images
  yfcc4k_csv: data/raw/yfcc4k/yfcc4k_places365.csv
  yfcc4k_images: data/raw/yfcc4k/images
  folder_images: data/raw/photos
manifest:
  min_image_side: 16
  max_quarantine_fraction: 0.05
  max_image_pixels: 89478485
  image_check_workers: 2
  expected_rows_im2gps3k: [2997, 2997]
  expected_rows_yfcc4k: [4536, 4536]
text:
  provider: none
  caption_template: "A street view photo taken in {city}, {state}, {country}"
  caption_fallback: "A street view photo"
  caption_from: template
  city_min_population: 15000
  city_km_per_sqrt_million: 4.0
  max_place_km: 100.0
  lmm_base_url: http://127.0.0.1:8000/v1
  lmm_model: gpt-4o-mini
  lmm_api_key_env: GEOLOC_LMM_API_KEY
  lmm_prompt: "In one or two sentences, describe what a street-level photo taken in {place}
    typically shows: landscape, vegetation, architecture, roads and signs. Answer with the
    description only."
  lmm_send_image: false
  lmm_max_concurrency: 4
  lmm_max_requests: 5000
  lmm_max_retries: 5
  lmm_backoff_s: 1.0
  lmm_timeout_s: 60.0
  lmm_temperature: 0.0
  lmm_max_tokens: 120
  lmm_cache_dir: artifacts/cache/lmm
"""
)


def layer_params(params: dict | None = None) -> dict:
    """params with every key this layer reads (existing values win)."""
    merged = copy.deepcopy(params) if params is not None else {}
    for name, values in PROPOSED.items():
        target = merged.setdefault(name, {})
        for key, value in values.items():
            target.setdefault(key, copy.deepcopy(value))
    return merged


def test_params_yaml_carries_every_data_layer_key():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    if "text" not in params:
        pytest.skip("params.yaml has no `text` section yet: the data layer is not wired in")
    missing = [
        f"{name}.{key}"
        for name, values in PROPOSED.items()
        for key in values
        if key not in params.get(name, {})
    ]
    assert not missing, f"params.yaml lacks {missing}"


def test_a_dvc_stage_runs_in_its_own_workspace(tmp_path, monkeypatch):
    """A queued `dvc exp run` runs stages in a temporary copy while GEOLOC_ROOT (exported by
    the Makefile) still names the main workspace: DVC_ROOT must win, or the experiment would
    overwrite the main workspace's artifacts."""
    from geoloc_core.params import ParamsError, find_root

    main, copy = tmp_path / "main", tmp_path / "exp-copy"
    for folder in (main, copy):
        folder.mkdir()
        (folder / "params.yaml").write_text("# a project root\n")
    monkeypatch.setenv("GEOLOC_ROOT", str(main))
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert find_root() == main.resolve()
    monkeypatch.setenv("DVC_ROOT", str(copy))
    assert find_root() == copy.resolve()
    monkeypatch.setenv("DVC_ROOT", str(tmp_path / "not-a-project"))  # no params.yaml there
    assert find_root() == main.resolve()
    monkeypatch.setenv("GEOLOC_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(ParamsError, match="GEOLOC_ROOT"):
        find_root()
