"""DualGeo's fusion attends within one image: shapes, residual + LayerNorm, weights per image."""

from __future__ import annotations

import pytest
import torch

from geoloc_core.models.cross_attention import BidirectionalCrossAttention, CrossAttentionBlock
from geoloc_core.models.segmentation_encoder import SegmentationEncoder, patch_histograms

B, T_IMAGE, T_SEG, DIM, HEADS = 3, 16, 64, 32, 4


@pytest.fixture
def views() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return (
        torch.randn(B, T_IMAGE, DIM, generator=generator),
        torch.randn(B, T_SEG, DIM, generator=generator),
    )


def test_shapes_and_weights_are_per_image(views):
    torch.manual_seed(0)
    fusion = BidirectionalCrossAttention(DIM, HEADS).eval()
    image, seg = views
    image_out, seg_out, weights = fusion(image, seg, return_weights=True)
    assert image_out.shape == (B, T_IMAGE, DIM) and seg_out.shape == (B, T_SEG, DIM)
    assert weights["image_to_seg"].shape == (B, HEADS, T_IMAGE, T_SEG)
    assert weights["seg_to_image"].shape == (B, HEADS, T_SEG, T_IMAGE)
    for w in weights.values():
        assert torch.allclose(w.sum(dim=-1), torch.ones(w.shape[:-1]), atol=1e-6)
        assert (w >= 0).all()
    # The weights of image 0 over its own other view do not change when the others change.
    alone = fusion(image[:1], seg[:1], return_weights=True)[2]
    for name, w in weights.items():
        assert torch.allclose(alone[name][0], w[0], atol=1e-6)


def test_residual_and_layer_norm(views):
    torch.manual_seed(0)
    block = CrossAttentionBlock(DIM, HEADS).eval()
    queries, context = views
    with torch.no_grad():
        block.attention.out_proj.weight.zero_()
        block.attention.out_proj.bias.zero_()
        block.feed_forward[-1].weight.zero_()
        block.feed_forward[-1].bias.zero_()
    out, _ = block(queries, context)
    # With attention and feed-forward outputs zeroed, only the residual path remains: LN(LN(q)).
    expected = torch.nn.functional.layer_norm(
        torch.nn.functional.layer_norm(queries, (DIM,)), (DIM,)
    )
    assert torch.allclose(out, expected, atol=1e-5)
    torch.manual_seed(0)
    block = CrossAttentionBlock(DIM, HEADS).eval()
    out, _ = block(queries * 10 + 3, context)
    assert torch.allclose(out.mean(dim=-1), torch.zeros(B, T_IMAGE), atol=1e-5)
    assert torch.allclose(out.std(dim=-1, unbiased=False), torch.ones(B, T_IMAGE), atol=1e-3)
    assert isinstance(block.norm_attention, torch.nn.LayerNorm)


def test_pooled_vectors_are_refused():
    fusion = BidirectionalCrossAttention(DIM, HEADS)
    with pytest.raises(ValueError, match="batch mates"):
        fusion(torch.randn(B, DIM), torch.randn(B, DIM))
    with pytest.raises(ValueError, match="agree on batch size"):
        fusion(torch.randn(B, T_IMAGE, DIM), torch.randn(B + 1, T_SEG, DIM))


def test_patch_histograms_count_each_cell():
    maps = torch.zeros(1, 8, 8, dtype=torch.long)
    maps[0, :4, :4] = 2  # sky in the top-left cell
    maps[0, 4:, 4:] = 6  # road in the bottom-right cell, half of it
    maps[0, 6:, 4:] = 4
    hist = patch_histograms(maps, 2)
    assert hist.shape == (1, 4, 150)
    assert torch.allclose(hist.sum(dim=-1), torch.ones(1, 4))
    assert hist[0, 0, 2] == 1 and hist[0, 1, 0] == 1 and hist[0, 2, 0] == 1
    assert hist[0, 3, 6] == 0.5 and hist[0, 3, 4] == 0.5
    with pytest.raises(ValueError, match="seg_grid=3"):
        patch_histograms(maps, 3)


def test_segmentation_encoder_keeps_layout():
    torch.manual_seed(0)
    encoder = SegmentationEncoder(grid=2, dim=DIM, heads=HEADS, layers=1).eval()
    top = torch.zeros(1, 8, 8, dtype=torch.long)
    top[0, :4] = 2
    bottom = torch.zeros(1, 8, 8, dtype=torch.long)
    bottom[0, 4:] = 2  # same global histogram, other layout
    assert not torch.allclose(encoder(top).mean(dim=1), encoder(bottom).mean(dim=1), atol=1e-4)
