"""`geoloc profile full|demo`: the full profile is profiles/full.yaml's overrides written into
params.yaml (which Dagster, DVC and the CLI all read), checked by the settings models; switching
back restores params.yaml byte for byte."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from geoloc_assets.cli import main
from geoloc_core.params import ParamsError
from geoloc_core.profiles import active_profile, read_overrides, switch
from geoloc_core.settings_tree import load_tree

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")
    return tmp_path


def test_full_and_back_round_trips_params_byte_for_byte(project: Path, capsys) -> None:
    demo = (project / "params.yaml").read_bytes()
    assert main(["--root", str(project), "profile", "full"]) == 0
    switched = (project / "params.yaml").read_text()
    assert active_profile(switched) == "full" and switched.encode() != demo
    values = yaml.safe_load(switched)
    overrides = read_overrides(project, "full")
    assert len(overrides) >= 20
    for override in overrides:
        section, key = override.key.split(".")
        assert values[section][key] == override.value, override.key
    tree = load_tree(values)  # the full settings load through the same models
    assert tree.backbone.architecture == "ViT-L-14-quickgelu" and tree.model.embed_dim == 512
    # every other key keeps its demo value, and the demo's line stays readable above the switch
    demo_values = yaml.safe_load(demo)
    changed = {o.key for o in overrides}
    for section, keys in demo_values.items():
        for key, value in keys.items():
            if f"{section}.{key}" not in changed:
                assert values[section][key] == value
    assert "  # demo: architecture: geoloc-demo-vit-tiny   # open_clip" in switched
    assert main(["--root", str(project), "profile", "full"]) == 0  # again: the same file
    assert (project / "params.yaml").read_text() == switched
    assert main(["--root", str(project), "profile", "demo"]) == 0
    assert (project / "params.yaml").read_bytes() == demo
    assert main(["--root", str(project), "profile"]) == 0
    assert capsys.readouterr().out.strip().endswith("demo")


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("model:\n  embed_dimm: 512\n", "profiles/full.yaml: model.embed_dimm: unknown key"),
        ("modle:\n  embed_dim: 512\n", "profiles/full.yaml: modle.embed_dim: params.yaml has no "),
        ("train:\n  epochs: -3\n", "profiles/full.yaml: train.epochs=-3"),
        (
            'lmm:\n  prompt_rag: "{similar} {dissimilar}: latitude, longitude?"\n',
            "lmm.prompt_rag spans several lines",
        ),
    ],
)
def test_a_bad_override_is_refused_by_name_and_nothing_written(
    project: Path, override: str, named: str
) -> None:
    (project / "profiles" / "full.yaml").write_text(override)
    before = (project / "params.yaml").read_bytes()
    with pytest.raises(ParamsError) as refused:
        switch(project, "full")
    assert named in str(refused.value)
    assert (project / "params.yaml").read_bytes() == before


def test_an_unknown_profile_names_the_known_ones(project: Path, capsys) -> None:
    assert main(["--root", str(project), "profile", "ful"]) == 2
    assert "no profile 'ful'" in capsys.readouterr().err
