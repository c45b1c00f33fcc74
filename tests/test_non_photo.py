"""The far-photo warning's non-photo test: a photo closer to a drawn non-photo than to its
nearest reference image is warned about, naming the non-photo and both cosines."""

from __future__ import annotations

import numpy as np
import pytest

from geoloc_core.predict.non_photo import GENERIC, GREYS, NonPhotoExemplars, non_photo_exemplars
from geoloc_core.training.generic_images import KINDS, generic_images, grey_ladder


def unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_a_photo_closer_to_a_non_photo_than_to_any_reference_is_warned_about():
    exemplars = NonPhotoExemplars(
        unit([[1, 0, 0], [0, 1, 0]]), ("a picture of grey static", "a picture of stripes")
    )
    photos = unit([[0.9, 0.1, 0.2], [0.1, 0.9, 0.1], [0.2, 0.3, 0.9]])
    nearest = np.array([0.5, 0.99, 0.6])  # each photo's best reference score
    found = exemplars.warnings(photos, nearest)
    assert found[1] is None and found[2] is None  # a reference is closer; nothing is closer
    assert found[0] is not None
    cosine = float(photos[0] @ exemplars.vectors[0])
    assert f"(grey static, cosine {cosine:.4f})" in found[0]
    assert "(best 0.5000)" in found[0] and found[0].endswith("the answer is a guess")


def test_a_tie_with_the_nearest_reference_is_no_warning():
    exemplars = NonPhotoExemplars(unit([[1, 0]]), ("a picture of one flat colour",))
    assert exemplars.warnings(unit([[1, 0]]), np.array([1.0], np.float32)) == [None]


def test_the_exemplars_are_the_drawn_non_photos_and_the_greys_through_the_embedding():
    seen: list[np.ndarray] = []

    def embed(images: np.ndarray) -> np.ndarray:
        seen.append(images)
        flat = images.reshape(len(images), -1).astype(np.float32) - 100.0
        return unit(flat)

    exemplars = non_photo_exemplars(embed, 16)
    (images,) = seen
    assert images.shape == (GENERIC + GREYS, 16, 16, 3)
    greys, grey_captions = grey_ladder(GREYS, 16)
    assert np.array_equal(images[GENERIC:], greys)
    assert exemplars.captions[GENERIC:] == tuple(grey_captions)
    assert exemplars.captions[: len(KINDS)] == tuple(caption for _, caption in KINDS)
    assert np.allclose(exemplars.vectors, embed(images))
    # drawn from their own seed: not the pretraining's images (seed 0)
    assert not np.array_equal(images[:GENERIC], generic_images(GENERIC, 16, 0)[0])


@pytest.mark.parametrize("levels", [2, 5])
def test_the_grey_ladder_runs_from_black_to_white(levels):
    images, captions = grey_ladder(levels, 4)
    assert images[0].max() == 0 and images[-1].min() == 255
    assert all(np.ptp(image) == 0 for image in images)
    assert captions == [dict(KINDS)["flat"]] * levels
