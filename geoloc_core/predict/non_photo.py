"""The far-photo warning's second test: does the photo look more like a non-photo than like any
reference photo?

The score test (far_warning.py) compares the decision's score with validation's badly wrong
decisions. A backbone that has only seen streets can place static or a grey card on a street
with a score as good as a real photo's: the demo's views-paired stand-in did (noise 0.578
against a threshold of 0.506). So the predictor embeds a few procedurally drawn non-photos
(static, flat colours and a ladder of greys, gradients, stripes, checks:
training/generic_images.py, from a seed of their own) through the same towers and heads once,
when it loads, and warns about a photo whose retrieval embedding is closer to one of them than
to its nearest reference image: a 1-NN between "a reference photo" and "not a photo", with no
threshold to calibrate.

The variants that read a segmentation (dualgeo, dualgeo+text) would need label maps of the
non-photos as well; they keep the score test alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from geoloc_core.training.generic_images import generic_images, grey_ladder

GENERIC = 60  # ten of each kind
GREYS = 5  # black, three greys, white
SEED = 7_2026_12


@dataclass(frozen=True)
class NonPhotoExemplars:
    vectors: np.ndarray  # (N, D) unit retrieval embeddings of the non-photos
    captions: tuple[str, ...]  # what each one is

    def warnings(self, retrieval: np.ndarray, nearest: np.ndarray) -> list[str | None]:
        """Per photo: the warning when its (n, D) retrieval embedding is closer to a non-photo
        than its nearest reference image is (nearest: (n,) that image's score), else None."""
        similarity = np.asarray(retrieval, np.float32) @ self.vectors.T
        best = similarity.argmax(axis=1)
        found: list[str | None] = []
        for row, column in enumerate(best):
            closest = float(similarity[row, column])
            if closest <= float(nearest[row]):
                found.append(None)
                continue
            found.append(
                "far from everything the model knows: the photo is closer to a drawn non-photo "
                f"({self.captions[column].removeprefix('a picture of ')}, cosine {closest:.4f}) "
                f"than to any reference photo (best {float(nearest[row]):.4f}); "
                "the answer is a guess"
            )
        return found


def non_photo_exemplars(
    embed: Callable[[np.ndarray], np.ndarray], image_size: int
) -> NonPhotoExemplars:
    """The non-photos at the towers' image size through `embed` (decoded images -> unit
    retrieval embeddings, as the predictor embeds a photo)."""
    drawn, captions = generic_images(GENERIC, image_size, SEED)
    greys, grey_captions = grey_ladder(GREYS, image_size)
    vectors = embed(np.concatenate([drawn, greys]))
    return NonPhotoExemplars(np.asarray(vectors, np.float32), tuple(captions + grey_captions))
