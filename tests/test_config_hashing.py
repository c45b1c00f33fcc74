"""Changing one params section changes the code_version of exactly the assets that read it."""

from __future__ import annotations

import copy
import hashlib
import json

import dagster as dg
import pytest
import yaml

from geoloc_assets.code_versions import code_version
from geoloc_assets.definitions import build_definitions
from geoloc_core.params import ParamsError, sections_hash
from geoloc_core.pipeline.code_files import code_digest
from geoloc_core.pipeline.registry import asset_sections, stage_named
from tests.conftest import REPO


@pytest.fixture
def params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


ASSET_SECTIONS = asset_sections()


def versions(params: dict) -> dict[str, str]:
    return {name: code_version(name, params) for name in ASSET_SECTIONS}


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    # the report's row labels read model, embeddings, rerank, verification and lmm too
    [
        # the confidence radii are calibrated on errors measured as evaluation measures them
        (
            "evaluation",
            "thresholds_km",
            [1, 25, 200, 750],
            {"metrics", "report", "baselines", "confidence_calibration"},
        ),
        (
            "evaluation",
            "distance",
            "haversine",
            {"metrics", "report", "baselines", "confidence_calibration"},
        ),
        # the served model bundles what the predict path reads (not segmentation or text,
        # whose changes reach it through its upstream assets' content)
        ("retrieval", "top_k", 3, {"candidates", "served_model"}),
        ("rerank", "eps_km", 10.0, {"rerank", "report", "served_model"}),
        (
            "verification",
            "method",
            "top1",
            {"verification", "report", "served_model", "confidence_calibration"},
        ),
        ("lmm", "model", "another", {"lmm_diversification", "lmm_reasoning", "report",
                                     "served_model"}),
        ("embeddings", "parts", ["frozen"], {"reference_embeddings", "report"}),
        ("index", "type", "hnsw", {"retrieval_index", "candidates", "served_model"}),
        ("train", "epochs", 1, {"alignment_model"}),
        ("model", "embed_dim", 64, {"alignment_model", "report"}),
        ("data", "root", "elsewhere", {"reference_manifest", "benchmark_manifest"}),
        (
            "benchmarks",
            "names",
            ["demo-street"],
            {"report", "segmentation_cache", "backbone_features"},
        ),
        ("backbone", "pretrain_epochs", 3, {"backbone_weights"}),
        ("features", "token_grid", 2, {"backbone_features"}),
        ("model", "variant", "dualgeo", {"alignment_model", "report"}),
        ("segmentation", "label_noise", 0.1, {"segmentation_cache"}),
    ],
)
def test_one_section_changes_only_its_readers(params, section, key, value, expected):
    before = versions(params)
    changed = copy.deepcopy(params)
    changed[section][key] = value
    after = versions(changed)
    assert {name for name in before if before[name] != after[name]} == expected


def test_hash_ignores_key_order_and_number_spelling(params):
    reordered = {"evaluation": dict(reversed(list(params["evaluation"].items())))}
    assert sections_hash(params, ["evaluation"]) == sections_hash(reordered, ["evaluation"])
    a = {"train": {"lr": 0.001}}
    b = {"train": {"lr": 1e-3}}
    assert sections_hash(a, ["train"]) == sections_hash(b, ["train"])
    assert sections_hash(a, ["train"]) != sections_hash({"train": {"lr": 0.002}}, ["train"])


def expected_code_version(name: str, params: dict) -> str:
    """The documented rule, the sections' part computed here from scratch: <digest of the code
    the step runs>-<sha256 of the sorted sections as compact, key-sorted JSON, first 12 hex>."""
    payload = {s: params[s] for s in sorted(set(ASSET_SECTIONS[name]))}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    code = code_digest(stage_named(name).module)
    return f"{code}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def test_hash_of_a_known_section_is_pinned():
    """A changed hash rule would silently mark every asset of every project stale."""
    assert sections_hash({"train": {"lr": 0.001}}, ["train"]) == "0eea425e9393"


def test_definitions_carry_the_code_versions(tmp_path, params):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    graph = build_definitions(tmp_path).resolve_asset_graph()
    for name in ASSET_SECTIONS:
        node = graph.get(dg.AssetKey(name))
        assert node.code_version == expected_code_version(name, params), name


def test_config_defaults_come_from_params(tmp_path, params):
    params["retrieval"]["top_k"] = 7
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    defs = build_definitions(tmp_path)
    candidates = defs.resolve_assets_def("candidates")
    config_field = candidates.op.config_schema.config_type.fields["retrieval"]
    assert config_field.default_value["top_k"] == 7


def test_missing_section_is_a_clear_error(tmp_path, params):
    del params["evaluation"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match="no section 'evaluation'"):
        build_definitions(tmp_path)
