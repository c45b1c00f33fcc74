"""The model, train, backbone and features sections: every key required, clear errors, and the
papers' values as the model defaults."""

from __future__ import annotations

import pytest

from geoloc_core.encoders.settings import BackboneConfig, FeaturesConfig
from geoloc_core.models.config import ModelConfig, TrainConfig
from geoloc_core.models.variants import FROZEN, VARIANTS, variant_spec


def section_of(cls) -> dict:
    return {name: getattr(cls(), name) for name in cls.model_fields}


@pytest.mark.parametrize("cls", [ModelConfig, TrainConfig, FeaturesConfig, BackboneConfig])
def test_every_key_is_required_and_no_other(cls):
    values = section_of(cls)
    assert cls.from_section(values) == cls()
    first = next(iter(values))
    with pytest.raises(ValueError, match=f"missing \\['{first}'\\]"):
        cls.from_section({k: v for k, v in values.items() if k != first})
    with pytest.raises(ValueError, match="unknown \\['typo'\\]"):
        cls.from_section({**values, "typo": 1})


def test_papers_defaults_and_learning_rate_per_family():
    train = TrainConfig()
    assert (train.epochs, train.batch_size, train.weight_decay, train.lr_step_gamma) == (
        10,
        256,
        1e-6,
        0.87,
    )
    assert [train.lr_for(v) for v in VARIANTS] == [3e-5, 3e-5, 4e-5, 4e-5]
    assert ModelConfig().gps_sigmas == (2.0**0, 2.0**4, 2.0**8)


def test_clear_errors():
    with pytest.raises(ValueError, match=r"model\.variant='dual': must be one of"):
        ModelConfig(variant="dual")
    with pytest.raises(ValueError, match="fusion_dim=30 must be a multiple"):
        ModelConfig(fusion_dim=30, fusion_heads=8)
    with pytest.raises(ValueError, match="choose one"):
        BackboneConfig(pretrained="openai", pretrain_epochs=3)
    with pytest.raises(ValueError, match="would be random"):
        BackboneConfig(pretrained=None, pretrain_epochs=0)
    with pytest.raises(ValueError, match=r"features\.device"):
        FeaturesConfig(device="tpu")
    with pytest.raises(ValueError, match=r"train\.batch_size=1: must be an int >= 2"):
        TrainConfig(batch_size=1)


def test_variants_retrieve_with_what_they_train():
    for spec in VARIANTS.values():
        assert set(spec.retrieval) <= {FROZEN, *spec.embeddings}
        assert FROZEN in spec.retrieval  # both papers index the frozen embedding
        assert spec.gps_aligned in spec.embeddings
    assert variant_spec("dualgeo+text").uses_text and variant_spec("dualgeo").uses_segmentation
    assert not variant_spec("g3").uses_segmentation
