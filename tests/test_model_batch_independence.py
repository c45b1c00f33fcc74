"""Each sample's embedding is the same whatever other samples share its batch, for every variant.

(The public DualGeo code attends across the batch; here attention stays within one image.)
"""

from __future__ import annotations

import pytest
import torch

from geoloc_core.models.alignment import GeoAlignmentModel, InputShapes
from geoloc_core.models.config import ModelConfig
from geoloc_core.models.inputs import AlignmentBatch
from geoloc_core.models.variants import VARIANTS

SHAPES = InputShapes(pooled_dim=24, token_dim=24, tokens=16, text_dim=20)
BATCH = 8


def tiny_config(variant: str) -> ModelConfig:
    return ModelConfig(
        variant=variant,
        embed_dim=16,
        head_hidden=32,
        gps_fourier_features=16,
        gps_hidden=16,
        gps_layers=1,
        fusion_dim=16,
        fusion_heads=2,
        fusion_layers=2,
        seg_grid=4,
        seg_layers=1,
    )


def random_batch(seed: int = 0) -> AlignmentBatch:
    g = torch.Generator().manual_seed(seed)
    return AlignmentBatch(
        pooled=torch.randn(BATCH, SHAPES.pooled_dim, generator=g),
        tokens=torch.randn(BATCH, SHAPES.tokens, SHAPES.token_dim, generator=g),
        label_maps=torch.randint(0, 150, (BATCH, 16, 16), generator=g),
    )


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_embedding_ignores_batch_mates(variant):
    model = GeoAlignmentModel(tiny_config(variant), SHAPES, seed=0).eval()
    batch = random_batch()
    order = torch.randperm(BATCH, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        together = model.embed(batch.select(order))
        retrieval_together = model.retrieval_embedding(batch.select(order))
        for position, sample in enumerate(order.tolist()):
            alone = model.embed(batch.select(torch.tensor([sample])))
            assert set(alone) == set(VARIANTS[variant].embeddings)
            for name, vector in alone.items():
                assert torch.allclose(vector[0], together[name][position], atol=1e-5), name
            single = model.retrieval_embedding(batch.select(torch.tensor([sample])))
            assert torch.allclose(single[0], retrieval_together[position], atol=1e-5)
    norms = retrieval_together.norm(dim=-1)
    assert torch.allclose(norms, torch.ones(BATCH), atol=1e-5)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_term_trains(variant):
    """One loss per embedding, a learnable temperature each, and gradients into every head."""
    model = GeoAlignmentModel(tiny_config(variant), SHAPES, seed=0)
    g = torch.Generator().manual_seed(1)
    batch = random_batch()
    text = torch.nn.functional.normalize(torch.randn(BATCH, SHAPES.text_dim, generator=g), dim=-1)
    batch = AlignmentBatch(
        batch.pooled,
        batch.tokens,
        batch.label_maps,
        latlon=torch.rand(BATCH, 2, generator=g) * torch.tensor([120.0, 340.0])
        - torch.tensor([60.0, 170.0]),
        text=text,
        caption_ids=torch.arange(BATCH),
    )
    output = model.loss(batch, same_place_km=1.0)
    assert set(output.terms) == set(VARIANTS[variant].embeddings)
    assert all(t == pytest.approx(0.07) for t in output.temperatures.values())
    output.total.backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad
