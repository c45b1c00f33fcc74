"""params.schema.json is generated from the settings tree; a stale copy fails here (regenerate
it with `geoloc schema`)."""

from __future__ import annotations

import json

import yaml

from geoloc_assets.cli import main
from geoloc_core.settings_tree import SCHEMA_FILE, SECTIONS, params_schema, schema_text
from tests.conftest import REPO


def test_committed_schema_is_current():
    committed = (REPO / SCHEMA_FILE).read_text()
    assert committed == schema_text(), "params.schema.json is stale: run `geoloc schema`"


def test_schema_requires_every_section_and_key_with_a_description():
    schema = params_schema()
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert schema["required"] == list(SECTIONS) == list(params)
    assert schema["additionalProperties"] is False
    for name, model in SECTIONS.items():
        section = schema["$defs"][model.__name__]
        assert section["required"] == list(params[name]), name
        assert section["additionalProperties"] is False
        assert all(field.get("description") for field in section["properties"].values()), name


def test_params_yaml_points_editors_at_the_schema():
    first = (REPO / "params.yaml").read_text().splitlines()[0]
    assert first == f"# yaml-language-server: $schema=./{SCHEMA_FILE}"


def test_geoloc_schema_writes_the_file(tmp_path, capsys):
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    assert main(["--root", str(tmp_path), "schema"]) == 0
    assert json.loads((tmp_path / SCHEMA_FILE).read_text()) == params_schema()
    assert capsys.readouterr().out.strip() == str(tmp_path.resolve() / SCHEMA_FILE)
