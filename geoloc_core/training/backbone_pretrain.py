"""The demo's backbone: its small open_clip model pretrained once, CLIP-style, then frozen.

The demo cannot download CLIP, and a ViT trained from scratch per variant is slow and weak on
two CPU cores. Both papers start from a frozen, contrastively pretrained CLIP, so the demo does
the same in miniature: image-caption InfoNCE on the reference split's images and place
captions, validated by caption retrieval on the validation split. The weights are then written
to a file that every later step loads through the same open_clip call as `openai` weights.

CLIP on real photos is robust to what changes pixels but not places (light, weather, season,
camera, compression), because it has seen millions of them. With the caption loss alone, 1,800
images taught this tower less than 72 hand-made colour numbers (frozen 1-NN 42 % against 72.7 %
within 25 km on validation). The pretraining has two generic means against that:
- the epoch's order puts the reference views of one place (equal coordinates) side by side in
  pairs, and an image-image InfoNCE term makes each image's nearest batch mate the other view
  of its place (`views_weight`): what a frozen 1-NN needs, learnt directly;
- a share of the training images (`augment_share`) is perturbed anew each time: zoomed in and
  shifted as another camera would frame the place, darkened or brightened, desaturated,
  tinted, hazed, blurred and given sensor noise, seeded by the batch, so a resumed run repeats
  it (`augment`). No flip: a mirrored street is another street. The rest are shown as they
  are, so the tower learns the places and, from the perturbed copies, that light and weather
  are not the place. Perturbing every image, or cropping up to 45 % with flips, cost the tiny
  tower more than it gave in 20 epochs (validation 1-NN 11-26 %); half of them with a 16-pixel
  patch (4 x 4 tokens: an epoch costs three quarters of one at 8 pixels) and the inputs
  standardised per image (data/clip_preprocess.py) gave 91.7 % on validation and 26.7 % on
  demo-street in the demo's 30 epochs (92.3 % and 26.7 % in 40), against 75.7 % and 10.3 %
  without.
Both off (0), the pretraining is the caption loss alone, image for image as before.

A stand-in that has seen only streets maps anything, static or a grey card, onto some street.
`generic_images` adds procedurally drawn non-photos with captions of their kind
(training/generic_images.py), so such pictures land apart, as with CLIP.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from geoloc_core.data.clip_preprocess import ImageTransform
from geoloc_core.encoders.clip_towers import ClipTowers
from geoloc_core.models.losses import (
    MAX_LOGIT_SCALE,
    LossOutput,
    multi_positive_info_nce,
    same_id_mask,
)
from geoloc_core.paths import ProjectPaths
from geoloc_core.training.captions import caption_index, captions_for
from geoloc_core.training.generic_images import generic_images

MAX_PRETRAIN_IMAGES = 200_000  # the images are decoded into memory once


@dataclass(frozen=True)
class CaptionBatch:
    pixels: torch.Tensor  # (B, 3, H, W)
    tokens: torch.Tensor  # (B, context) caption token ids
    caption_ids: torch.Tensor  # (B,) equal ids = equal captions
    place_ids: torch.Tensor | None = None  # (B,) equal ids = views of one place


@dataclass(frozen=True)
class Recipe:
    """How the reference images are shown to the pretraining (params backbone.pretrain_*)."""

    augment: float = 0.0  # strength of the perturbations, 0 (none) to 1
    augment_share: float = 1.0  # share of the images perturbed; the others shown as they are
    views_weight: float = 0.0  # weight of the image-image term; 0: caption loss alone
    seed: int = 0

    @property
    def pairs_views(self) -> bool:
        return self.views_weight > 0


@dataclass
class CaptionedImages:
    """Decoded images with the row of their caption among the distinct captions."""

    images: np.ndarray  # (N, H, W, 3) uint8
    caption_index: np.ndarray  # (N,)
    caption_tokens: torch.Tensor  # (U, context)
    transform: ImageTransform  # the towers' own (normalises the decoded images)
    place_index: np.ndarray | None = None  # (N,) equal = same coordinates

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, positions: np.ndarray) -> CaptionBatch:
        captions = torch.from_numpy(self.caption_index[positions])
        return CaptionBatch(
            self.transform.normalize(self.images[positions]),
            self.caption_tokens[captions],
            captions,
        )


@dataclass
class TrainingImages:
    """The reference images as the pretraining sees them: perturbed, views of a place paired."""

    data: CaptionedImages
    recipe: Recipe

    def __len__(self) -> int:
        return len(self.data)

    def epoch_order(self, generator: torch.Generator) -> np.ndarray:
        if self.recipe.pairs_views and self.data.place_index is not None:
            return paired_order(self.data.place_index, generator)
        return torch.randperm(len(self.data), generator=generator).numpy()

    def batch(self, positions: np.ndarray) -> CaptionBatch:
        plain = self.data.batch(positions)
        pixels = plain.pixels
        if self.recipe.augment > 0:
            generator = batch_generator(self.recipe.seed, positions)
            unit = torch.from_numpy(self.data.images[positions]).permute(0, 3, 1, 2) / 255.0
            pixels = self.data.transform.normalize_unit(
                augment(unit, self.recipe.augment, generator, self.recipe.augment_share)
            )
        places = None
        if self.recipe.pairs_views and self.data.place_index is not None:
            places = torch.from_numpy(self.data.place_index[positions])
        return CaptionBatch(pixels, plain.tokens, plain.caption_ids, places)


def places_of(lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    """(N,) one id per distinct (lat, lon): the views of one place share it."""
    points = np.stack([np.asarray(lats, np.float64), np.asarray(lons, np.float64)], axis=1)
    _, inverse = np.unique(points, axis=0, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


def paired_order(places: np.ndarray, generator: torch.Generator) -> np.ndarray:
    """A random order of all samples in which the views of one place come in adjacent pairs
    (a place's last view alone when it has an odd number); the pairs in random order."""
    places = np.asarray(places, dtype=np.int64)
    n = len(places)
    shuffled = torch.randperm(n, generator=generator).numpy()
    grouped = shuffled[np.argsort(places[shuffled], kind="stable")]
    run_start = np.r_[True, places[grouped][1:] != places[grouped][:-1]]
    first = np.maximum.accumulate(np.where(run_start, np.arange(n), 0))
    within = np.arange(n) - first  # the sample's rank among its place's views
    pair = np.cumsum(within % 2 == 0) - 1  # consecutive pairs within a place
    pair_rank = torch.randperm(int(pair[-1]) + 1 if n else 0, generator=generator).numpy()
    return grouped[np.lexsort((within, pair_rank[pair]))]


def batch_generator(seed: int, positions: np.ndarray) -> torch.Generator:
    """A generator drawn from the seed and the batch's samples: a resumed run, whose epoch
    orders repeat, repeats its perturbations too."""
    key = hashlib.sha256(np.int64(seed).tobytes() + np.asarray(positions, np.int64).tobytes())
    return torch.Generator().manual_seed(int.from_bytes(key.digest()[:8], "little") >> 1)


def augment(
    images: torch.Tensor, strength: float, generator: torch.Generator, share: float = 1.0
) -> torch.Tensor:
    """(B, 3, H, W) pixels in [0, 1] -> copies in [0, 1] of which a `share` (drawn per image) is
    perturbed and the rest returned unchanged. A perturbed copy gets generic camera and light
    changes, each scaled by strength: zoom in by up to 3/8 of the side (30 % at the demo's
    0.8) with a shift inside the margin, light x0.2..1.2, saturation, channel gains (tint),
    haze in 4 of 10, a blur in 3 of 10, sensor noise. Strength 0 changes nothing."""
    b = images.shape[0]

    def draw(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(shape or (b,), generator=generator)

    def per_image(values: torch.Tensor) -> torch.Tensor:
        return values.view(b, 1, 1, 1)

    perturbed = draw(0.0, 1.0) < share
    side = 1.0 - strength * draw(0.0, 0.375)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = side
    theta[:, 1, 1] = side
    theta[:, 0, 2] = (1 - side) * draw(-0.5, 0.5)
    theta[:, 1, 2] = (1 - side) * draw(-0.5, 0.5)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    x = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    x = x * per_image(torch.exp(strength * draw(math.log(0.2), math.log(1.2))))
    grey = x.mean(dim=1, keepdim=True)
    x = grey + per_image(1.0 + strength * draw(-0.7, 0.3)) * (x - grey)
    x = x * (1.0 + strength * draw(-0.3, 0.3, b, 3)).view(b, 3, 1, 1)
    haze = strength * draw(0.0, 0.7) * (draw(0.0, 1.0) < 0.4)
    x = x * (1 - per_image(haze)) + per_image(haze * draw(0.5, 0.9))
    blur = torch.nonzero(draw(0.0, 1.0) < 0.3 * strength).flatten()
    if len(blur):
        x[blur] = _binomial_blur(x[blur])
    x = x + per_image(strength * draw(0.0, 0.05)) * torch.randn(x.shape, generator=generator)
    return torch.where(per_image(perturbed), x.clamp(0.0, 1.0), images)


def _binomial_blur(x: torch.Tensor) -> torch.Tensor:
    """A 3 x 3 binomial blur (1 2 1 per axis), edges repeated."""
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    rows = padded[..., :-2, :] + 2 * padded[..., 1:-1, :] + padded[..., 2:, :]
    return (rows[..., :-2] + 2 * rows[..., 1:-1] + rows[..., 2:]) / 16


def clip_loss(towers: ClipTowers, batch: CaptionBatch, views_weight: float = 0.0) -> LossOutput:
    """CLIP's symmetric InfoNCE; images sharing a caption are each other's positives. With
    place ids and views_weight > 0, plus views_weight x the image-image term (views_loss)."""
    model = towers.model
    image = model.encode_image(batch.pixels, normalize=True)
    text = model.encode_text(batch.tokens, normalize=True)
    scale = model.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)
    loss = multi_positive_info_nce(scale * image @ text.t(), same_id_mask(batch.caption_ids))
    temperature = float(1 / scale.detach())
    terms = {"image_text": float(loss.detach())}
    total = loss
    if views_weight > 0 and batch.place_ids is not None:
        views = views_loss(scale * image @ image.t(), batch.place_ids)
        terms["image_image"] = float(views.detach())
        total = loss + views_weight * views
    return LossOutput(total, terms, {"image_text": temperature})


def views_loss(logits: torch.Tensor, place_ids: torch.Tensor) -> torch.Tensor:
    """InfoNCE among a batch's images: each image's positives are the other views of its place
    (itself left out), its negatives every other image; rows without another view are left
    out (zero, with a gradient, when no row has one)."""
    alone = torch.eye(len(place_ids), dtype=torch.bool, device=logits.device)
    positives = same_id_mask(place_ids) & ~alone
    rows = positives.any(dim=1)
    if not bool(rows.any()):
        return logits.sum() * 0.0
    log_p = F.log_softmax(logits.masked_fill(alone, float("-inf"))[rows], dim=1)
    targets = positives[rows].float()
    targets = targets / targets.sum(dim=1, keepdim=True)
    return -(targets * log_p.masked_fill(~positives[rows], 0.0)).sum(dim=1).mean()


@torch.no_grad()
def caption_top1(towers: ClipTowers, data: CaptionedImages, batch_size: int = 256) -> float:
    """Share of images whose most similar distinct caption is their own (validation)."""
    model = towers.model
    was_training = model.training
    model.eval()
    texts = torch.cat(
        [
            model.encode_text(data.caption_tokens[s : s + batch_size], normalize=True)
            for s in range(0, len(data.caption_tokens), batch_size)
        ]
    )
    hits = 0
    for start in range(0, len(data), batch_size):
        positions = np.arange(start, min(start + batch_size, len(data)))
        batch = data.batch(positions)
        image = model.encode_image(batch.pixels, normalize=True)
        hits += int(((image @ texts.t()).argmax(dim=1) == batch.caption_ids).sum())
    model.train(was_training)
    return 100.0 * hits / max(len(data), 1)


def captioned_split(
    root: Path, manifest: pd.DataFrame, split: str, towers: ClipTowers
) -> tuple[CaptionedImages, int]:
    """A split's decodable images with their captions; (data, how many images failed)."""
    rows = manifest[manifest["split"] == split].reset_index(drop=True)
    if len(rows) > MAX_PRETRAIN_IMAGES:
        raise ValueError(
            f"{len(rows)} {split} images: pretraining the backbone here is meant for the demo "
            "world; at MP16 scale set backbone.pretrained to open_clip weights (openai)"
        )
    images, positions, failures = towers.transform.load_batch(
        rows["id"].tolist(), [Path(root) / p for p in rows["image"]]
    )
    kept = rows.iloc[positions]
    ids = kept["id"].tolist()
    distinct, index = caption_index(captions_for(ProjectPaths(Path(root)).place_texts, ids))
    places = places_of(kept["lat"].to_numpy(), kept["lon"].to_numpy())
    data = CaptionedImages(images, index, towers.tokenizer(distinct), towers.transform, places)
    return data, len(failures)


def with_generic_images(
    data: CaptionedImages, count: int, seed: int, tokenizer: Callable[[list[str]], torch.Tensor]
) -> CaptionedImages:
    """The reference images plus `count` generic non-photos at their size; each non-photo is a
    place of its own (no view pairs) and its caption one of the kinds' (new distinct captions
    after the reference's)."""
    if count == 0:
        return data
    size = data.images.shape[1:3]
    if size[0] != size[1]:
        raise ValueError(f"the towers' images are {size[0]} x {size[1]}; generic images are square")
    images, captions = generic_images(count, size[0], seed)
    kinds, kind_rows = caption_index(captions)
    caption_rows = len(data.caption_tokens) + kind_rows
    places = data.place_index if data.place_index is not None else np.arange(len(data))
    first_new_place = int(places.max()) + 1 if len(places) else 0
    return CaptionedImages(
        np.concatenate([data.images, images]),
        np.concatenate([data.caption_index, caption_rows]).astype(np.int64),
        torch.cat([data.caption_tokens, tokenizer(kinds)]),
        data.transform,
        np.concatenate([places, first_new_place + np.arange(count)]).astype(np.int64),
    )
