"""The GPS encoder loads GeoCLIP's location-encoder weights; a mismatch is a clear error."""

from __future__ import annotations

import pytest
import torch

from geoloc_core.encoders.geoclip import GeoClipWeightsError, load_geoclip_weights
from geoloc_core.encoders.gps import GPSEncoder

SIGMAS = (1.0, 16.0, 256.0)


def geoclip_state(sigmas=SIGMAS, rff=8, hidden=16, out=12, layers=3) -> dict[str, torch.Tensor]:
    """A state dict with GeoCLIP's key layout (LocEnc{i}.capsule.{0,1,3,5}, .head.0)."""
    generator = torch.Generator().manual_seed(1)
    state: dict[str, torch.Tensor] = {}
    for i, sigma in enumerate(sigmas):
        state[f"LocEnc{i}.capsule.0.b"] = torch.randn(rff, 2, generator=generator) * sigma
        width = 2 * rff
        for k in range(layers):
            state[f"LocEnc{i}.capsule.{2 * k + 1}.weight"] = torch.randn(hidden, width)
            state[f"LocEnc{i}.capsule.{2 * k + 1}.bias"] = torch.randn(hidden)
            width = hidden
        state[f"LocEnc{i}.head.0.weight"] = torch.randn(out, hidden)
        state[f"LocEnc{i}.head.0.bias"] = torch.randn(out)
    return state


def test_loads_every_tensor(tmp_path):
    state = geoclip_state()
    file = tmp_path / "location_encoder_weights.pth"
    torch.save(state, file)
    encoder = GPSEncoder(12, SIGMAS, n_features=16, hidden=16, layers=3, seed=5)
    load_geoclip_weights(encoder, file)
    own = encoder.state_dict()
    assert torch.equal(own["branches.1.rff.matrix"], state["LocEnc1.capsule.0.b"].t())
    assert torch.equal(own["branches.2.mlp.4.weight"], state["LocEnc2.capsule.5.weight"])
    assert torch.equal(own["branches.0.head.bias"], state["LocEnc0.head.0.bias"])
    # The encoder computes GeoCLIP's function of its (Mercator) input.
    xy = torch.tensor([[0.1, -0.2]])
    projected = 2 * torch.pi * xy @ state["LocEnc0.capsule.0.b"].t()
    x = torch.cat([projected.cos(), projected.sin()], dim=-1)
    for k in (1, 3, 5):
        x = torch.relu(
            x @ state[f"LocEnc0.capsule.{k}.weight"].t() + state[f"LocEnc0.capsule.{k}.bias"]
        )
    x = x @ state["LocEnc0.head.0.weight"].t() + state["LocEnc0.head.0.bias"]
    assert torch.allclose(encoder.branches[0](xy), x, atol=1e-5)


def test_wrong_shapes_name_the_params(tmp_path):
    file = tmp_path / "weights.pth"
    torch.save(geoclip_state(hidden=16), file)
    encoder = GPSEncoder(12, SIGMAS, n_features=16, hidden=32, layers=3)
    with pytest.raises(GeoClipWeightsError, match=r"shape mismatches.*gps_hidden 1024"):
        load_geoclip_weights(encoder, file)
    fewer_layers = GPSEncoder(12, SIGMAS, n_features=16, hidden=16, layers=2)
    with pytest.raises(GeoClipWeightsError, match="unexpected"):
        load_geoclip_weights(fewer_layers, file)


def test_wrong_scale_order_and_foreign_files(tmp_path):
    file = tmp_path / "weights.pth"
    torch.save(geoclip_state(sigmas=(256.0, 16.0, 1.0)), file)
    encoder = GPSEncoder(12, SIGMAS, n_features=16, hidden=16, layers=3)
    with pytest.raises(GeoClipWeightsError, match=r"gps_sigmas\[0\] is 1"):
        load_geoclip_weights(encoder, file)
    torch.save({"visual.proj": torch.zeros(2)}, file)
    with pytest.raises(GeoClipWeightsError, match="not GeoCLIP location-encoder keys"):
        load_geoclip_weights(encoder, file)
    with pytest.raises(FileNotFoundError, match="gps_init"):
        load_geoclip_weights(encoder, tmp_path / "absent.pth")


def test_training_initialises_from_the_configured_file(tmp_path):
    from geoloc_core.models.alignment import GeoAlignmentModel, InputShapes
    from geoloc_core.models.config import ModelConfig

    state = geoclip_state(rff=8, hidden=16, out=12)
    (tmp_path / "weights").mkdir()
    torch.save(state, tmp_path / "weights" / "geoclip.pth")
    config = ModelConfig(
        variant="image-only",
        embed_dim=12,
        head_hidden=8,
        gps_fourier_features=16,
        gps_hidden=16,
        gps_layers=3,
        gps_init="weights/geoclip.pth",
    )
    model = GeoAlignmentModel(config, InputShapes(4, 4, 1, 0))
    model.init_gps_from_geoclip(tmp_path)
    assert torch.equal(model.gps_encoder.branches[0].head.weight, state["LocEnc0.head.0.weight"])


def test_installed_geoclip_weights_compute_geoclips_location_encoder():
    """With model.gps_init: geoclip and the equal_earth projection, our encoder is GeoCLIP's
    own location encoder (from the installed wheel) on the same coordinates."""
    location_encoder = pytest.importorskip(
        "geoclip.model.location_encoder", reason="the geoclip wheel is not installed"
    )
    from geoloc_core.encoders.geoclip_files import LOCATION_ENCODER_FILE, geoclip_file

    theirs = location_encoder.LocationEncoder().eval()
    ours = GPSEncoder(512, SIGMAS, n_features=512, hidden=1024, layers=3, projection="equal_earth")
    load_geoclip_weights(ours, geoclip_file(LOCATION_ENCODER_FILE))
    coords = torch.tensor(
        [[48.8566, 2.3522], [-33.8688, 151.2093], [64.1466, -21.9426], [0.0, 0.0],
         [-89.9, 179.9], [89.99, -179.99], [35.6762, 139.6503], [-54.8019, -68.3030]]
    )
    with torch.no_grad():
        expected = theirs(coords)
        got = ours(coords)
    # a real encoding: well above the tolerance, and different from place to place
    assert expected.abs().max() > 3e-2
    assert (expected[0] - expected[1]).abs().max() > 1e-2
    assert torch.allclose(got, expected, atol=1e-5, rtol=0)
    # G3's Mercator input gives another function of the same weights: the setting matters.
    mercator = GPSEncoder(512, SIGMAS, n_features=512, hidden=1024, layers=3)
    load_geoclip_weights(mercator, geoclip_file(LOCATION_ENCODER_FILE))
    with torch.no_grad():
        assert not torch.allclose(mercator(coords), expected, atol=1e-2)


def test_gps_init_geoclip_names_the_installed_file(tmp_path):
    from geoloc_core.encoders.geoclip_files import (
        GPS_GALLERY_FILE,
        LOCATION_ENCODER_FILE,
        resolve_release_file,
    )

    pytest.importorskip("geoclip.model", reason="the geoclip wheel is not installed")
    weights = resolve_release_file("geoclip", LOCATION_ENCODER_FILE, tmp_path)
    assert weights.name == "location_encoder_weights.pth" and weights.stat().st_size > 30e6
    gallery = resolve_release_file("geoclip", GPS_GALLERY_FILE, tmp_path)
    assert gallery.read_text().splitlines()[0] == "LAT,LON"
    assert len(gallery.read_text().splitlines()) == 100_001
    own = resolve_release_file("w/own.pth", LOCATION_ENCODER_FILE, tmp_path)
    assert own == tmp_path / "w/own.pth"


def test_unknown_projection_is_refused():
    with pytest.raises(ValueError, match="gps_projection='robinson'"):
        GPSEncoder(12, SIGMAS, n_features=16, hidden=16, layers=1, projection="robinson")
