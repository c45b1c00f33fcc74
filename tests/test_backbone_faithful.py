"""The frozen backbone computes what CLIP computes: QuickGELU for OpenAI's weights (the full
profile's), and transformers' CLIPModel giving the same embeddings as open_clip from the same
weights (converted by geoloc_core.encoders.clip_convert), through the loader other code calls.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from geoloc_core.encoders.backbone import FeatureSpec, backbone_outputs
from geoloc_core.encoders.clip_convert import save_transformers_clip
from geoloc_core.encoders.clip_towers import (
    ClipTowers,
    TowerSpec,
    activation_names,
    build_clip,
    check_activation,
    freeze,
)
from geoloc_core.encoders.settings import BackboneConfig
from geoloc_core.file_hash import file_sha256
from geoloc_core.params import ParamsError
from geoloc_core.training.backbone_weights import (
    BackboneRecord,
    backbone_spec,
    load_backbone,
    write_record,
)
from geoloc_core.training.feature_cache import FeatureCache, spec_fingerprint, write_shard
from geoloc_core.training.feature_extraction import WorkItem, extract_features

ROOT = Path(__file__).resolve().parents[1]
TINY = "geoloc-demo-vit-tiny"
CAPTIONS = ["A street view photo taken in Paris, France", "Sydney, New South Wales, Australia"]
# The full profile's towers as docs/profiles.md lists them; profiles/full.yaml, where the
# project has one, is what the test reads instead.
DOCUMENTED_FULL = {"architecture": "ViT-L-14-quickgelu", "pretrained": "openai"}


def full_profile_backbone() -> dict:
    section = dict(yaml.safe_load((ROOT / "params.yaml").read_text())["backbone"])
    profile = ROOT / "profiles" / "full.yaml"
    overrides = DOCUMENTED_FULL
    if profile.is_file():
        overrides = yaml.safe_load(profile.read_text()).get("backbone", {})
    return {**section, **overrides, "pretrain_epochs": 0}


def test_full_profile_backbone_uses_quick_gelu() -> None:
    """Built as the full profile's settings say (random weights: nothing downloads here),
    every activation of both towers is QuickGELU, as OpenAI's weights were trained with."""
    config = BackboneConfig.from_section(full_profile_backbone())
    spec = backbone_spec(config, ROOT)
    with torch.device("meta"):  # the architecture without allocating its 1.7 GB
        towers = build_clip(spec, device="meta", random_weights=True)
    assert towers.embed_dim == 768 and towers.image_size == 224
    assert activation_names(towers.model) == {"quick_gelu"}


def test_openai_weights_with_a_gelu_architecture_are_refused_or_fixed() -> None:
    section = {**full_profile_backbone(), "architecture": "ViT-L-14", "pretrained": "openai"}
    with pytest.raises(ParamsError, match=r"backbone\.architecture='ViT-L-14'.*'ViT-L-14-quick"):
        BackboneConfig.from_section(section)
    plain = TowerSpec("ViT-L-14", "openai")
    with pytest.raises(ValueError, match="trained with QuickGELU"):
        check_activation(plain)
    with torch.device("meta"):  # built directly, the factory still gives the tag QuickGELU
        forced = build_clip(plain, device="meta", random_weights=True)
        untagged = build_clip(TowerSpec("ViT-L-14", None), device="meta", random_weights=True)
    assert activation_names(forced.model) == {"quick_gelu"}
    assert activation_names(untagged.model) == {"gelu"}


def _towers(quick_gelu: bool) -> ClipTowers:
    """A tiny random open_clip ViT (the demo's architecture), with either activation."""
    towers = build_clip(TowerSpec(TINY, None))
    if quick_gelu:
        import open_clip

        model = open_clip.create_model(TINY, force_quick_gelu=True)
        towers = ClipTowers(model, towers.tokenizer, towers.embed_dim, towers.transform)
    return freeze(towers)


def _transformers_section(pretrained: str) -> dict:
    return {
        **full_profile_backbone(),
        "implementation": "transformers",
        "architecture": "tiny-clip",
        "pretrained": pretrained,
    }


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> tuple[ClipTowers, Path]:
    """Tiny random open_clip towers (GELU) and their transformers checkpoint directory."""
    torch.manual_seed(0)
    ours = _towers(False)
    return ours, save_transformers_clip(ours, tmp_path_factory.mktemp("root") / "clip")


@pytest.mark.parametrize("quick_gelu", [False, True])
def test_transformers_backbone_equals_open_clip(converted, tmp_path, quick_gelu) -> None:
    ours, directory = converted
    if quick_gelu:
        torch.manual_seed(1)
        ours = _towers(True)
        directory = save_transformers_clip(ours, tmp_path / "clip")
    # pretrained relative to the project root, as params.yaml would name it
    section = _transformers_section(directory.name)
    theirs = freeze(load_backbone(BackboneConfig.from_section(section), directory.parent))
    assert theirs.implementation == "transformers" and theirs.transform == ours.transform
    expected_act = "quick_gelu" if quick_gelu else "gelu"
    assert theirs.model.clip.config.vision_config.hidden_act == expected_act
    pixels = torch.randn(3, 3, 64, 64)
    a = backbone_outputs(ours.model.visual, pixels, token_grid=4)
    b = backbone_outputs(theirs.model.visual, pixels, token_grid=4)
    assert a.tokens.shape == b.tokens.shape == (3, 16, ours.embed_dim)
    torch.testing.assert_close(b.pooled, a.pooled, rtol=0, atol=1e-5)
    torch.testing.assert_close(b.tokens, a.tokens, rtol=0, atol=1e-5)
    with torch.no_grad():
        text_a = ours.model.encode_text(ours.tokenizer(CAPTIONS))
        text_b = theirs.model.encode_text(theirs.tokenizer(CAPTIONS))
    torch.testing.assert_close(text_b, text_a, rtol=0, atol=1e-5)
    assert float(pixels.std()) > 0.5 and float(a.pooled.abs().max()) > 0.1  # not degenerate


def test_features_of_a_photo_agree_across_implementations_in_fp32(converted, tmp_path) -> None:
    """The features step with either backbone on a real-size photo, stored in fp32."""
    ours, directory = converted
    section = _transformers_section(str(directory))
    theirs = freeze(load_backbone(BackboneConfig.from_section(section), tmp_path))
    photo = tmp_path / "photo.jpg"
    pixels = np.random.default_rng(0).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(photo)
    items = [WorkItem("a", photo)]
    a = extract_features(ours, items, token_grid=2, batch_size=1, precision="fp32")
    b = extract_features(theirs, items, token_grid=2, batch_size=1, precision="fp32")
    assert a.pooled.dtype == np.float32 and a.tokens.shape == (1, 4, ours.embed_dim)
    np.testing.assert_allclose(b.pooled, a.pooled, rtol=0, atol=1e-5)
    np.testing.assert_allclose(b.tokens, a.tokens, rtol=0, atol=1e-5)
    # stored and read back in fp32; the spec records the precision (fp16 records stay as the
    # first cache format wrote them, so their fingerprints do not change)
    spec = FeatureSpec(TINY, None, 2, "random", precision="fp32")
    fp16 = FeatureSpec(TINY, None, 2, "random")
    assert set(fp16.to_record()) == {"architecture", "pretrained", "token_grid", "weights_sha256"}
    assert spec_fingerprint(spec, 64) != spec_fingerprint(fp16, 64)
    meta = {
        "spec": spec.to_record(), "fingerprint": spec_fingerprint(spec, 64), "image_size": 64,
        "pooled_dim": ours.embed_dim, "token_dim": ours.embed_dim, "tokens": 4, "ids": ["a"],
    }
    write_shard(tmp_path / "features", 0, 1, a, meta)
    cache = FeatureCache(tmp_path / "features")
    pooled, tokens = cache.load(["a"])
    assert pooled.dtype == np.float32 and cache.spec() == spec
    np.testing.assert_array_equal(pooled, a.pooled)
    np.testing.assert_array_equal(tokens, a.tokens)


def test_checkpoint_directory_without_preprocessing_is_refused(converted, tmp_path) -> None:
    directory = tmp_path / "clip"
    shutil.copytree(converted[1], directory)
    (directory / "preprocessor_config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"has no preprocessor_config\.json"):
        load_backbone(BackboneConfig.from_section(_transformers_section("clip")), tmp_path)


def test_export_clip_writes_the_projects_towers_for_transformers(converted, tmp_path) -> None:
    """`geoloc export-clip DIR`: the towers backbone_weights recorded (a weights file, as the
    demo's pretraining writes) become a checkpoint that the transformers backbone loads."""
    from geoloc_assets.cli import main

    ours, _ = converted
    weights = tmp_path / "artifacts" / "backbone" / "tiny.pt"
    weights.parent.mkdir(parents=True)
    torch.save(ours.model.state_dict(), weights)
    record = BackboneRecord(TINY, "artifacts/backbone/tiny.pt", file_sha256(weights))
    write_record(tmp_path, record)
    assert main(["--root", str(tmp_path), "export-clip", str(tmp_path / "exported")]) == 0
    section = _transformers_section("exported")
    theirs = freeze(load_backbone(BackboneConfig.from_section(section), tmp_path))
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = ours.model.encode_image(pixels)
        got = theirs.model.encode_image(pixels)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_predict_loads_a_transformers_backbone_by_its_digest(converted, tmp_path) -> None:
    """`geoloc predict` rebuilds the towers a model was trained on from its FeatureSpec: a
    transformers directory is checked against the digest of its three files."""
    from geoloc_core.encoders.hf_clip import checkpoint_digest
    from geoloc_core.predict.embed import decode_photo, frozen_towers

    directory = converted[1]
    spec = FeatureSpec("tiny-clip", "clip", 4, checkpoint_digest(directory), "transformers")
    towers = frozen_towers(spec, directory)
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((80, 120, 3), 200, np.uint8)).save(photo)
    assert decode_photo(photo.read_bytes(), towers.transform).shape == (64, 64, 3)
    changed = tmp_path / "changed"
    shutil.copytree(directory, changed)
    config = changed / "preprocessor_config.json"
    config.write_text(config.read_text().replace('"resample": 3', '"resample": 2'))
    with pytest.raises(ValueError, match="not the backbone the model was trained on"):
        frozen_towers(spec, changed)
