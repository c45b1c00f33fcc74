"""The stage registry is the one place a step is declared: the Dagster assets, their code
versions and dvc.yaml all follow it, and a step's code version follows the code it runs."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest
import yaml

from geoloc_assets.definitions import build_definitions
from geoloc_core.pipeline.code_files import PACKAGE_DIR, code_digest, code_files
from geoloc_core.pipeline.dvc_stages import groups, render
from geoloc_core.pipeline.registry import (
    SOURCES,
    STAGES,
    asset_sections,
    downstream,
    readers,
)
from tests.conftest import REPO


@pytest.fixture(scope="module")
def params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.fixture(scope="module")
def graph(params, tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return build_definitions(root).resolve_asset_graph()


def test_committed_dvc_yaml_is_the_registry_rendered(params):
    """Fails when a step was declared without running `geoloc dvc-yaml`, or dvc.yaml edited."""
    assert (REPO / "dvc.yaml").read_text() == render(params["benchmarks"]["names"])


def test_every_step_is_an_asset_with_its_declared_upstream_and_group(graph):
    for stage in STAGES:
        node = graph.get(dg.AssetKey(stage.name))
        assert {k.to_user_string() for k in node.parent_keys} == {u.step for u in stage.upstream}
        assert node.group_name == stage.group
    assets = {k.to_user_string() for k in graph.materializable_asset_keys}
    assert assets == {stage.name for stage in STAGES}


def test_every_dvc_stage_runs_one_group_and_lists_its_sections(params):
    stages = yaml.safe_load(render(params["benchmarks"]["names"]))["stages"]
    assert list(stages) == list(groups())
    for name, members in groups().items():
        assert stages[name]["cmd"] == f"geoloc materialize --group {name}"
        read = {section for stage in members for section in stage.sections}
        assert read <= set(stages[name]["params"])


def test_steps_are_declared_in_the_order_the_data_flows():
    seen = set(SOURCES)
    for stage in STAGES:
        assert {u.step for u in stage.upstream} <= seen, stage.name
        seen.add(stage.name)


def test_each_step_and_check_resolves_to_a_function():
    for stage in STAGES:
        assert callable(stage.step())
        for check in stage.checks:
            assert check.evaluate is None or callable(check.evaluator())


def test_a_steps_code_is_what_it_imports_and_nothing_downstream():
    files = code_files("geoloc_core.pipeline.rerank")
    rerank = {p.relative_to(PACKAGE_DIR).as_posix() for p in files}
    assert "rerank/dbscan.py" in rerank  # the centre rule
    assert "steps/verification.py" not in rerank
    assert "training/loop.py" not in rerank
    verification = code_files("geoloc_core.pipeline.verification")
    assert PACKAGE_DIR / "rerank" / "dbscan.py" not in code_files("geoloc_core.pipeline.candidates")
    assert PACKAGE_DIR / "steps" / "tables.py" in verification  # it reads the re-ranked file


def test_changing_the_centre_rule_changes_exactly_the_code_versions_that_run_it(tmp_path):
    """No number to bump: an edit to rerank/dbscan.py moves rerank's code version and leaves
    the steps above it alone."""
    package = tmp_path / "geoloc_core"
    shutil.copytree(PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    modules = [stage.module for stage in STAGES]
    before = {m: code_digest(m, package) for m in modules}
    dbscan = package / "rerank" / "dbscan.py"
    dbscan.write_text(dbscan.read_text() + "\n# the centre rule changed\n")
    after = {m: code_digest(m, package) for m in modules}
    moved = {stage.name for stage in STAGES if before[stage.module] != after[stage.module]}
    assert "rerank" in moved
    assert not moved & {"candidates", "alignment_model", "retrieval_index", "backbone_features"}
    assert moved <= downstream({"rerank"}) | {"served_model"}  # predict re-ranks too


def test_downstream_and_readers_follow_the_declarations():
    assert readers("rerank") == {"rerank", "report", "served_model"}
    below = downstream({"rerank"})
    assert {"rerank", "lmm_reasoning", "verification", "metrics", "report"} <= below
    assert not below & {"candidates", "retrieval_index", "alignment_model", "lmm_diversification"}
    assert downstream({"alignment_model"}) >= {"reference_embeddings", "served_model", "report"}
    assert set(asset_sections()) == {stage.name for stage in STAGES}
