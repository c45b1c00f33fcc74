"""Changing text.* marks only place_texts (and what depends on it) stale: in code versions,
and in a real Dagster instance after a materialization."""

from __future__ import annotations

import copy

import dagster as dg
import pytest
import yaml

from geoloc_assets.code_versions import code_version
from geoloc_assets.factory import build_assets
from geoloc_assets.staleness import asset_states
from geoloc_core.pipeline.registry import asset_sections
from tests.conftest import REPO
from tests.test_data_params import layer_params
from tests.test_validation_dagster import (
    build_data_assets,
    photo_project,
    resources,
    temp_instance,
)


def versions(params: dict) -> dict[str, str]:
    return {name: code_version(name, params) for name in asset_sections()}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("caption_template", "A photo from {city}, {country}"),
        ("provider", "openai"),
        ("lmm_model", "another-model"),
        ("city_km_per_sqrt_million", 3.0),
    ],
)
def test_text_settings_change_only_place_texts_code_version(key, value):
    params = layer_params(yaml.safe_load((REPO / "params.yaml").read_text()))
    changed = copy.deepcopy(params)
    changed["text"][key] = value
    before, after = versions(params), versions(changed)
    assert {name for name in before if before[name] != after[name]} == {"place_texts"}


def test_data_settings_do_not_change_place_texts_code_version():
    params = layer_params()
    changed = copy.deepcopy(params)
    changed["manifest"]["min_image_side"] = 32
    assert code_version("place_texts", params) == code_version("place_texts", changed)


def graph(params: dict, root) -> dg.Definitions:
    @dg.asset(deps=["place_texts"])
    def uses_texts() -> None:
        return None

    texts = build_assets(params, only=["place_texts"])
    everything = [*build_data_assets(params), *texts, uses_texts]
    return dg.Definitions(
        assets=[a for a in everything if not isinstance(a, dg.AssetChecksDefinition)],
        asset_checks=[a for a in everything if isinstance(a, dg.AssetChecksDefinition)],
        resources=resources(root),
    )


def materialize(defs: dg.Definitions, instance, keys: list[str]) -> None:
    result = dg.materialize(
        [*defs.assets, *defs.asset_checks],
        instance=instance,
        resources=defs.resources,
        selection=dg.AssetSelection.assets(*keys),
    )
    assert result.success


def test_dagster_marks_place_texts_and_downstream_stale(tmp_path):
    """Dagster marks an asset stale for its own new code version; geoloc status carries that
    to its dependants at once (they wait on it), and after it is re-materialized with new
    content Dagster itself marks them stale; the manifest upstream stays fresh throughout."""
    params = photo_project(tmp_path, with_gps=4, without_gps=0)
    keys = ["reference_manifest", "place_texts", "uses_texts"]
    changed = copy.deepcopy(params)
    changed["text"]["caption_template"] = "A photo from {city}, {country}"
    with temp_instance(tmp_path) as instance:
        before = graph(params, tmp_path)
        materialize(before, instance, keys)
        assert {s.status for s in asset_states(before, instance, [])} == {"fresh"}

        after = graph(changed, tmp_path)
        states = {s.asset: s.status for s in asset_states(after, instance, [])}
        assert states == {"reference_manifest": "fresh", "place_texts": "stale",
                          "uses_texts": "stale"}

        materialize(after, instance, ["place_texts"])
        states = {s.asset: s.status for s in asset_states(after, instance, [])}
        assert states == {"reference_manifest": "fresh", "place_texts": "fresh",
                          "uses_texts": "stale"}
