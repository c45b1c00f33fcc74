"""The assets' Dagster Config comes from the settings tree: typed, described fields whose
defaults are params.yaml's values, and a bad run config value is refused with the one line
params.yaml's check gives for the same value, before the asset's body runs."""

import copy

import dagster as dg
import pytest
import yaml

from geoloc_assets.config import RunConfigRefused, asset_config
from geoloc_core.params import ParamsError
from geoloc_core.params_check import validate_params
from geoloc_core.settings_tree import SECTIONS
from tests.conftest import REPO

PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())


def schema_fields(config_cls: type[dg.Config], name: str) -> dict:
    return config_cls.to_config_schema().as_field().config_type.fields[name].config_type.fields


@pytest.mark.parametrize(
    ("asset", "sections"),
    [("alignment_model", ("model", "train")), ("candidates", ("retrieval", "index"))],
)
def test_config_fields_are_the_sections_with_params_defaults(asset, sections):
    config_cls = asset_config(asset, sections, PARAMS)
    assert config_cls().model_dump() == {name: PARAMS[name] for name in sections}
    for name in sections:
        fields = schema_fields(config_cls, name)
        assert list(fields) == list(SECTIONS[name].model_fields)
        assert all(field.description for field in fields.values())


def test_every_section_has_a_config_counterpart():
    for name in SECTIONS:
        config_cls = asset_config(f"probe_{name}", [name], PARAMS)
        assert config_cls().model_dump() == {name: PARAMS[name]}


def run_rerank_with(value) -> list:
    """Materializes a tiny asset with the rerank config; what its body saw."""
    config_cls = asset_config("rerank", ["rerank"], PARAMS)
    seen: list = []

    @dg.asset
    def probe(config: config_cls) -> None:
        seen.append(config.rerank.eps_km)

    run_config = {"ops": {"probe": {"config": {"rerank": {"eps_km": value}}}}}
    dg.materialize([probe], run_config=run_config)
    return seen


def params_refusal(value) -> str:
    params = copy.deepcopy(PARAMS)
    params["rerank"]["eps_km"] = value
    with pytest.raises(ParamsError) as caught:
        validate_params(params)
    return str(caught.value)


@pytest.mark.parametrize("value", [-5.0, None, float("nan")])
def test_bad_run_config_is_refused_with_the_params_line(value):
    with pytest.raises(RunConfigRefused) as caught:
        run_rerank_with(value)
    assert str(caught.value) == params_refusal(value)
    assert str(caught.value).startswith("params.yaml: rerank.eps_km=")


def test_an_int_for_a_float_is_checked_as_the_float_dagster_makes_of_it():
    with pytest.raises(RunConfigRefused) as caught:
        run_rerank_with(-5)
    assert str(caught.value) == params_refusal(-5.0)


def test_wrong_kind_is_refused_by_the_launchpad_schema():
    with pytest.raises(dg.DagsterInvalidConfigError, match="eps_km"):
        run_rerank_with("abc")


def test_a_good_override_reaches_the_asset():
    assert run_rerank_with(10.0) == [10.0]
