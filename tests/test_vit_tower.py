"""The photo-embedding path's image tower without open_clip (encoders/vit_tower.py) computes
what open_clip's VisionTransformer computes from the same weights file, for the demo's
architecture and for every option it claims to rebuild; what it does not rebuild is named, so
the caller builds open_clip's instead of embedding differently.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from geoloc_core.encoders.architectures import architecture_config
from geoloc_core.encoders.backbone import backbone_outputs
from geoloc_core.encoders.clip_towers import TowerSpec, _open_clip, build_clip, freeze
from geoloc_core.encoders.vit_tower import PlainVisionTower, plain_vision_tower, tower_options

TINY = "geoloc-demo-vit-tiny"
# Every option the plain tower claims to rebuild, away from its default, in one small tower.
OPTIONS_CONFIG = {
    "embed_dim": 48,
    "quick_gelu": True,
    "vision_cfg": {
        "image_size": 32,
        "patch_size": 8,
        "width": 64,
        "layers": 2,
        "head_width": 16,
        "mlp_ratio": 3.0,
        "ls_init_value": 0.1,
        "no_ln_pre": True,
        "final_ln_after_pool": True,
        "pool_type": "avg",
        "norm_kwargs": {"eps": 1e-6},
        "patch_dropout": 0.3,
    },
    "text_cfg": {"context_length": 8, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def perturbed_weights(model: torch.nn.Module, file: Path, seed: int) -> None:
    """Every tensor moved off its initial value (layer norms at 1 and biases at 0 would hide a
    parameter read from the wrong place), then saved as the pipeline saves towers."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(0.05 * torch.randn(tensor.shape, generator=generator))
    torch.save(model.state_dict(), file)


def register_config(folder: Path, name: str, config: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(config))
    _open_clip().add_model_config(folder)


def both_outputs(name: str, file: Path, config: dict | None, size: int, grid: int):
    reference = freeze(build_clip(TowerSpec(name, str(file)))).model.visual
    plain = plain_vision_tower(name, file, config)
    assert isinstance(plain, PlainVisionTower), plain
    pixels = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(7))
    return backbone_outputs(reference, pixels, grid), backbone_outputs(plain, pixels, grid)


def test_demo_tower_equals_open_clip_bit_for_bit(tmp_path: Path) -> None:
    towers = build_clip(TowerSpec(TINY), random_weights=True)
    weights = tmp_path / "towers.pt"
    perturbed_weights(towers.model, weights, seed=1)
    expected, got = both_outputs(TINY, weights, None, 64, 4)
    assert got.pooled.shape == expected.pooled.shape == (3, 128)
    assert got.tokens.shape == expected.tokens.shape == (3, 16, 128)
    assert torch.equal(got.pooled, expected.pooled)
    assert torch.equal(got.tokens, expected.tokens)


def test_every_rebuilt_option_equals_open_clip(tmp_path: Path) -> None:
    """QuickGELU, layer scale, no ln_pre, LN after pooling, average pooling, a norm eps."""
    name = "geoloc-test-vit-options"
    register_config(tmp_path / "configs", name, OPTIONS_CONFIG)
    towers = build_clip(TowerSpec(name), random_weights=True)
    weights = tmp_path / "towers.pt"
    perturbed_weights(towers.model, weights, seed=2)
    expected, got = both_outputs(name, weights, OPTIONS_CONFIG, 32, 2)
    assert got.pooled.shape == (3, 48)
    torch.testing.assert_close(got.pooled, expected.pooled, rtol=0, atol=1e-6)
    torch.testing.assert_close(got.tokens, expected.tokens, rtol=0, atol=1e-6)
    # the comparison can tell the options apart: the same weights under GELU differ
    gelu = PlainVisionTower(replace(tower_options(OPTIONS_CONFIG), quick_gelu=False))
    plain = plain_vision_tower(name, weights, OPTIONS_CONFIG)
    gelu.load_state_dict(plain.state_dict())
    pixels = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    assert (backbone_outputs(gelu.eval(), pixels, 2).pooled - got.pooled).abs().max() > 1e-3


def test_full_profile_architecture_shape_is_read_without_open_clip() -> None:
    options = tower_options(architecture_config("ViT-L-14-quickgelu"))
    assert (options.width, options.layers, options.heads, options.patch_size) == (1024, 24, 16, 14)
    assert (options.image_size, options.output_dim, options.mlp_width) == (224, 768, 4096)
    assert options.quick_gelu is True


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"attentional_pool": True}, "attentional_pool"),
        ({"qk_norm": True}, "qk_norm"),
        ({"timm_model_name": "vit_base_patch16_224"}, "timm_model_name"),
        ({"layers": [3, 4, 6, 3]}, "layers"),
        ({"pool_type": "none"}, "pool_type"),
    ],
)
def test_what_is_not_rebuilt_is_named(change: dict, reason: str) -> None:
    config = json.loads(json.dumps(OPTIONS_CONFIG))
    config["vision_cfg"].update(change)
    answer = tower_options(config)
    assert isinstance(answer, str) and reason in answer


def test_weights_of_another_shape_or_format_are_named(tmp_path: Path) -> None:
    towers = build_clip(TowerSpec(TINY), random_weights=True)
    state = towers.model.state_dict()
    state["visual.proj"] = torch.zeros(128, 64)
    other = tmp_path / "other.pt"
    torch.save(state, other)
    answer = plain_vision_tower(TINY, other)
    assert isinstance(answer, str) and "proj" in answer and "shape" in answer
    del state["visual.proj"]
    torch.save(state, other)
    assert "other parameters" in plain_vision_tower(TINY, other)
    garbage = tmp_path / "scripted.pt"
    garbage.write_bytes(b"not a checkpoint")
    assert "not a plain state dict" in plain_vision_tower(TINY, garbage)


def test_the_plain_tower_imports_neither_open_clip_nor_torchvision(tmp_path: Path) -> None:
    towers = build_clip(TowerSpec(TINY), random_weights=True)
    weights = tmp_path / "towers.pt"
    torch.save(towers.model.state_dict(), weights)
    code = (
        "import sys, torch\n"
        "from pathlib import Path\n"
        "from geoloc_core.encoders.vit_tower import plain_vision_tower\n"
        f"tower = plain_vision_tower({TINY!r}, Path({str(weights)!r}))\n"
        "assert not isinstance(tower, str), tower\n"
        "tower(torch.zeros(1, 3, 64, 64))\n"
        "print(sorted(m for m in ('open_clip', 'torchvision') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_photo_path_prepares_pixels_as_the_pipeline_does(tmp_path: Path) -> None:
    """`geoloc predict` builds the demo tower without open_clip; its transform must be the one
    the features were cached with, the stand-in's per-image standardisation included (without
    it, a new photo's embedding is not the cached one's, and the references look far)."""
    from geoloc_core.encoders.backbone import FeatureSpec
    from geoloc_core.predict.embed import frozen_towers
    from geoloc_core.training.backbone_weights import weights_digest

    towers = build_clip(TowerSpec(TINY), random_weights=True)
    weights = tmp_path / "towers.pt"
    perturbed_weights(towers.model, weights, seed=3)
    pipeline = freeze(build_clip(TowerSpec(TINY, str(weights))))
    spec = FeatureSpec(TINY, str(weights), 4, weights_digest(TowerSpec(TINY, str(weights))))
    photo_path = frozen_towers(spec, weights)
    assert isinstance(photo_path.model.visual, PlainVisionTower)  # the path without open_clip
    assert photo_path.transform == pipeline.transform
    assert photo_path.transform.per_image
    images = torch.randint(0, 256, (2, 64, 64, 3), generator=torch.Generator().manual_seed(4))
    pixels = images.to(torch.uint8).numpy()
    assert torch.equal(photo_path.transform.normalize(pixels), pipeline.transform.normalize(pixels))
