"""G3's architecture is selected by settings; the defaults build (and save) today's model."""

from __future__ import annotations

import json

import torch

from geoloc_core.encoders.backbone import FeatureSpec
from geoloc_core.models.alignment import GeoAlignmentModel, InputShapes
from geoloc_core.models.config import ModelConfig
from geoloc_core.models.inputs import AlignmentBatch
from geoloc_core.models.persistence import TrainedModel, load_model, save_model

SMALL = dict(embed_dim=12, head_hidden=8, gps_fourier_features=8, gps_hidden=8, gps_layers=2)
SHAPES = InputShapes(pooled_dim=10, token_dim=10, tokens=4, text_dim=6)
SPEC = FeatureSpec("geoloc-demo-vit-tiny", "w.pt", 2, "0" * 64)


def test_defaults_keep_the_saved_format_and_the_modules(tmp_path):
    model = GeoAlignmentModel(ModelConfig(variant="g3", **SMALL), SHAPES)
    assert not hasattr(model, "location_projection") and not hasattr(model, "text_head")
    assert sorted(model.logit_scales) == ["image_gps", "image_text"]
    assert model.gps_encoder.branches[0].head.out_features == 12
    save_model(tmp_path, TrainedModel(model, SPEC, 32))
    saved = json.loads((tmp_path / "config.json").read_text())["model"]
    assert "gps_branch_dim" not in saved and "text_head" not in saved  # the first format's keys
    assert load_model(tmp_path).model.config == model.config


def test_g3_settings_build_g3s_layers_and_train_them(tmp_path):
    config = ModelConfig(
        variant="g3", gps_branch_dim=5, text_head=True, gps_projection="mercator_g3", **SMALL
    )
    model = GeoAlignmentModel(config, SHAPES)
    assert model.gps_encoder.branches[2].head.out_features == 5
    assert [m.out_features for m in model.location_projection[::2]] == [5, 12]
    assert [m.out_features for m in model.text_head[::2]] == [8, 6]
    assert sorted(model.logit_scales) == ["gps_text", "image_gps", "image_text"]
    latlon = torch.tensor([[10.0, 20.0], [-33.9, 151.2], [60.0, -150.0], [89.9, 0.0]])
    assert model.encode_gps(latlon).shape == (4, 12)
    batch = AlignmentBatch(
        pooled=torch.randn(4, 10), tokens=None, label_maps=None, latlon=latlon,
        text=torch.nn.functional.normalize(torch.randn(4, 6), dim=-1),
        caption_ids=torch.arange(4),
    )
    model.loss(batch, same_place_km=1.0).total.backward()
    assert model.text_head[0].weight.grad.abs().sum() > 0
    assert model.location_projection[0].weight.grad.abs().sum() > 0
    save_model(tmp_path, TrainedModel(model, SPEC, 32))
    saved = json.loads((tmp_path / "config.json").read_text())["model"]
    assert saved["gps_branch_dim"] == 5 and saved["text_head"] is True
    again = load_model(tmp_path).model
    assert torch.equal(again.encode_gps(latlon), model.eval().encode_gps(latlon))


def test_text_head_needs_a_text_term():
    import pytest

    with pytest.raises(ValueError, match=r"model\.text_head=true needs a variant with a text term"):
        ModelConfig(variant="image-only", text_head=True)


def test_mercator_g3_is_g3s_pyproj_input_bit_for_bit():
    """G3 projects float32 degrees with pyproj (EPSG:4326 -> 3857, always_xy), takes
    [northing, easting] as float32 and divides by 20037508.3427892; mercator_g3 gives the same
    float32 values (measured: 0 of 400,000 differ on 200,000 random points)."""
    import numpy as np
    import pytest

    pyproj = pytest.importorskip("pyproj")
    from geoloc_core.encoders.gps import mercator_g3_torch

    rng = np.random.default_rng(0)
    lat = rng.uniform(-89.9, 89.9, 10_000).astype(np.float32)
    lon = rng.uniform(-180, 180, 10_000).astype(np.float32)
    to_mercator = pyproj.Transformer.from_proj(
        pyproj.Proj("epsg:4326"), pyproj.Proj("epsg:3857"), always_xy=True
    )
    easting, northing = to_mercator.transform(lon, lat)
    theirs = torch.Tensor(np.stack([northing, easting], axis=1)) / 20037508.3427892
    ours = mercator_g3_torch(torch.from_numpy(np.stack([lat, lon], axis=1)))
    assert torch.equal(ours, theirs)
    assert theirs[:, 0].abs().max() > 1.5  # beyond 85.05 degrees: not clamped, as in G3


def test_g3s_full_size_checkpoint_layout_fits_the_model_at_vit_l14_sizes():
    """Every non-CLIP tensor of a ViT-L/14 g3.pth (shapes from G3's class) loads into the model
    that g3_model_config(768) builds: 768-d heads, the 512->512->768 location projection."""
    from geoloc_core.imports.clip_config import clip_config, clip_shapes
    from geoloc_core.imports.g3 import g3_model_config, our_state_dict
    from geoloc_core.imports.g3_checkpoint import G3Checkpoint, expected_shapes

    shapes = expected_shapes(clip_shapes(clip_config(None)))
    assert shapes["vision_projection_else_2.0.weight"] == (768, 768)
    assert shapes["location_projection_else.2.weight"] == (768, 512)
    assert shapes["vision_model.embeddings.patch_embedding.weight"] == (1024, 3, 14, 14)
    clip = ("vision_model.", "text_model.", "vision_projection.", "text_projection.")
    heads = {k: torch.full(s, 0.5) for k, s in shapes.items() if not k.startswith(clip)}
    model = GeoAlignmentModel(g3_model_config(768), InputShapes(768, 768, 16, 768))
    model.load_state_dict(our_state_dict(G3Checkpoint({}, heads, 768)), strict=True)
    assert model.encode_gps(torch.tensor([[1.0, 2.0]])).shape == (1, 768)
