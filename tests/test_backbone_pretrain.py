"""The demo backbone's pretraining recipe: views of a place paired in each batch, the
image-image term over them, the seeded perturbations of the training images, and the generic
non-photos shown beside them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from geoloc_core.data.clip_preprocess import ImageTransform
from geoloc_core.encoders.settings import BackboneConfig
from geoloc_core.training.backbone_pretrain import (
    CaptionedImages,
    Recipe,
    TrainingImages,
    augment,
    batch_generator,
    paired_order,
    places_of,
    views_loss,
    with_generic_images,
)
from geoloc_core.training.generic_images import KINDS, generic_images


def test_places_of_gives_equal_coordinates_one_id():
    ids = places_of(np.array([10.0, 20.0, 10.0, 10.0]), np.array([5.0, 5.0, 5.0, 6.0]))
    assert ids[0] == ids[2]
    assert len({ids[0], ids[1], ids[3]}) == 3


def test_paired_order_puts_views_of_a_place_side_by_side():
    places = np.repeat(np.arange(7), [6, 5, 1, 2, 3, 6, 4])  # odd counts leave one alone
    order = paired_order(places, torch.Generator().manual_seed(3))
    assert sorted(order.tolist()) == list(range(len(places)))
    expected_pairs = sum(np.bincount(places) // 2)
    # walk the order: a pair is two adjacent samples of one place starting a new group
    pairs, i = 0, 0
    while i < len(order) - 1:
        if places[order[i]] == places[order[i + 1]]:
            pairs, i = pairs + 1, i + 2
        else:
            i += 1
    assert pairs == expected_pairs
    again = paired_order(places, torch.Generator().manual_seed(3))
    other = paired_order(places, torch.Generator().manual_seed(4))
    assert np.array_equal(order, again)
    assert not np.array_equal(order, other)


def test_views_loss_matches_a_hand_computed_value():
    logits = torch.tensor(
        [
            [9.0, 2.0, 0.5, 1.0],
            [2.0, 9.0, 0.0, 3.0],
            [0.5, 0.0, 9.0, 1.5],
            [1.0, 3.0, 1.5, 9.0],
        ]
    )
    places = torch.tensor([0, 0, 1, 2])  # only rows 0 and 1 have another view
    expected = (
        -(
            F.log_softmax(torch.tensor([2.0, 0.5, 1.0]), 0)[0]
            + F.log_softmax(torch.tensor([2.0, 0.0, 3.0]), 0)[0]
        )
        / 2
    )
    assert torch.allclose(views_loss(logits, places), expected)


def test_views_loss_without_any_pair_is_zero_and_keeps_a_gradient():
    logits = torch.randn(3, 3, requires_grad=True)
    loss = views_loss(logits, torch.tensor([0, 1, 2]))
    loss.backward()
    assert float(loss.detach()) == 0.0 and logits.grad is not None


def test_augment_is_seeded_by_the_batch_and_stays_in_range():
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    positions = np.array([5, 1, 9, 2])
    first = augment(images, 1.0, batch_generator(0, positions))
    again = augment(images, 1.0, batch_generator(0, positions))
    assert torch.equal(first, again)
    assert not torch.equal(first, augment(images, 1.0, batch_generator(1, positions)))
    assert not torch.equal(first, augment(images, 1.0, batch_generator(0, positions[::-1])))
    assert first.shape == images.shape and 0.0 <= float(first.min()) <= float(first.max()) <= 1.0
    assert not torch.allclose(first, images, atol=0.05)


def test_augment_at_strength_zero_changes_nothing():
    images = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    out = augment(images, 0.0, torch.Generator().manual_seed(2))
    assert torch.allclose(out, images, atol=1e-5)


def test_augment_perturbs_its_share_of_the_images_and_returns_the_rest_unchanged():
    images = torch.rand(400, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    changed = lambda out: (out - images).abs().flatten(1).amax(1) > 1e-6  # noqa: E731
    assert not changed(augment(images, 1.0, torch.Generator().manual_seed(4), 0.0)).any()
    assert changed(augment(images, 1.0, torch.Generator().manual_seed(4), 1.0)).all()
    half = augment(images, 1.0, torch.Generator().manual_seed(4), 0.5)
    share = float(changed(half).float().mean())
    assert 0.42 < share < 0.58, share
    kept = ~changed(half)
    assert torch.equal(half[kept], images[kept])


def test_augment_never_mirrors_a_view():
    """A mirrored street is another street: with the light left alone (a bright, saturated
    image at strength 1 still changes), the left half never becomes the right half."""
    left = torch.zeros(64, 3, 8, 8)
    left[..., :4] = 1.0
    out = augment(left, 1.0, torch.Generator().manual_seed(5))
    assert bool((out[..., :4].mean(dim=(1, 2, 3)) >= out[..., 4:].mean(dim=(1, 2, 3))).all())


def _captioned(n: int = 12) -> CaptionedImages:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    places = np.arange(n) // 4  # even view counts: every view has a partner
    tokens = torch.arange(4 * 5).view(4, 5)
    return CaptionedImages(images, places.copy(), tokens, ImageTransform(size=8), places)


def test_training_images_with_the_recipe_off_are_the_plain_batches_in_the_plain_order():
    data = _captioned()
    shown = TrainingImages(data, Recipe(augment=0.0, views_weight=0.0))
    order = shown.epoch_order(torch.Generator().manual_seed(7))
    assert np.array_equal(order, torch.randperm(12, generator=torch.Generator().manual_seed(7)))
    batch, plain = shown.batch(order[:5]), data.batch(order[:5])
    assert torch.equal(batch.pixels, plain.pixels) and batch.place_ids is None


def test_training_images_pair_views_and_perturb_them_the_same_way_twice():
    data = _captioned()
    shown = TrainingImages(data, Recipe(augment=1.0, views_weight=1.0, seed=0))
    order = shown.epoch_order(torch.Generator().manual_seed(7))
    assert all(data.place_index[order[i]] == data.place_index[order[i + 1]] for i in (0, 2))
    batch = shown.batch(order[:6])
    assert torch.equal(batch.place_ids, torch.from_numpy(data.place_index[order[:6]]))
    assert torch.equal(batch.pixels, shown.batch(order[:6]).pixels)
    assert not torch.allclose(batch.pixels, data.batch(order[:6]).pixels, atol=0.05)


@pytest.mark.parametrize(
    ("key", "value"),
    [("pretrain_augment", 1.5), ("pretrain_views_weight", -1.0), ("pretrain_generic_share", 1.5)],
)
def test_bad_recipe_settings_are_refused_naming_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        BackboneConfig(pretrained=None, pretrain_epochs=1, **{key: value})


def test_generic_images_come_from_the_seed_in_turn_of_their_kinds():
    images, captions = generic_images(24, 32, seed=5)
    again, _ = generic_images(24, 32, seed=5)
    other, _ = generic_images(24, 32, seed=6)
    assert images.shape == (24, 32, 32, 3) and images.dtype == np.uint8
    assert np.array_equal(images, again) and not np.array_equal(images, other)
    assert captions == [caption for _, caption in KINDS] * 4
    kind = dict(zip([name for name, _ in KINDS], range(len(KINDS)), strict=True))
    per_kind = {name: images[i :: len(KINDS)].astype(np.float64) for name, i in kind.items()}
    # static varies from pixel to pixel, a flat colour hardly at all
    assert all(img.std(axis=(0, 1)).min() > 30 for img in per_kind["noise"])
    assert all(np.ptp(img, axis=2).max() == 0 for img in per_kind["grey_noise"])
    assert all(img.std(axis=(0, 1)).max() < 10 for img in per_kind["flat"])
    for name in ("stripes", "checks"):  # two colours, each covering part of the picture
        assert all(len(np.unique(img.reshape(-1, 3), axis=0)) <= 2 for img in per_kind[name])


def test_generic_images_join_the_reference_as_captioned_places_of_their_own():
    data = _captioned()

    def tokenizer(texts: list[str]) -> torch.Tensor:
        return torch.tensor([[len(t), ord(t[-1]), 0, 0, 0] for t in texts])

    assert with_generic_images(data, 0, 0, tokenizer) is data
    joined = with_generic_images(data, 9, 0, tokenizer)
    images, captions = generic_images(9, 8, 0)
    kinds = sorted(set(captions))
    assert len(joined) == 21
    assert np.array_equal(joined.images[:12], data.images)
    assert np.array_equal(joined.images[12:], images)
    assert torch.equal(joined.caption_tokens[:4], data.caption_tokens)
    assert torch.equal(joined.caption_tokens[4:], tokenizer(kinds))
    assert [kinds[i - 4] for i in joined.caption_index[12:]] == captions
    assert np.array_equal(joined.place_index[:12], data.place_index)
    new_places = joined.place_index[12:]
    assert len(set(new_places)) == 9 and new_places.min() > data.place_index.max()
    # no view pairs among them: the pairing leaves every generic image alone
    order = TrainingImages(joined, Recipe(views_weight=1.0)).epoch_order(
        torch.Generator().manual_seed(1)
    )
    assert sorted(order.tolist()) == list(range(21))
