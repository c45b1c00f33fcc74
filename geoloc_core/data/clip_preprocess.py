"""CLIP's image preprocessing, the one transform every frozen-tower input goes through.

Backbone features, the demo's backbone pretraining, reference embeddings (they read those
features), `geoloc predict` and the served model all turn a photo into the tower's input here,
so a photo is seen the same way when it is cached and when it is queried.

What CLIP (and both papers, through transformers' CLIPImageProcessor) computes: the shorter side
resized to the input size (bicubic, Pillow's filter), a centred crop of size x size (the offset
rounded down, as transformers does), scaled to [0, 1] and normalised with the weights' mean and
std. `resize_mode: squash` (a few open_clip tags) resizes straight to size x size instead. On a
square image of the input size both are the identity, so the demo's 64 px images are unchanged.

The demo's own stand-in architecture adds one step, `per_image`: each normalised image is then
standardised per channel by its own mean and spread, so a darker, hazier or tinted view of a
place reaches the tower as nearly the same input. CLIP learnt that invariance from millions of
photos; a tower pretrained on 1,800 cannot (clip_towers.PER_IMAGE_ARCHITECTURES says which
architectures have it; an exported checkpoint records it in its preprocessor config).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from geoloc_core.data.decode import (
    DEFAULT_MAX_PIXELS,
    decode_rgb,
    read_image_bytes,
)
from geoloc_core.data.images import ImageFailure, decode_batch, normalize_pixels, standardize

# OpenAI CLIP's statistics (open_clip's OPENAI_DATASET_MEAN/STD, transformers' OPENAI_CLIP_*).
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
RESAMPLING = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}
RESIZE_MODES = ("shortest", "squash")
# transformers' resample codes (PILImageResampling) for the two filters above.
_PIL_CODES = {3: "bicubic", 2: "bilinear"}
# per_image: the floor added to an image's spread, in normalised units, so that a flat image
# (one colour) is not blown up into noise
PER_IMAGE_FLOOR = 0.05
# the key an exported checkpoint's preprocessor_config.json carries for per_image
PER_IMAGE_KEY = "geoloc_per_image_standardize"


@dataclass(frozen=True)
class ImageTransform:
    """How one decoded photo becomes the tower's input: size x size pixels, then normalised."""

    size: int
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"
    per_image: bool = False  # then standardised per image and channel (module docstring)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"image transform size={self.size} must be >= 1")
        if self.interpolation not in RESAMPLING:
            raise ValueError(
                f"image interpolation {self.interpolation!r} is not supported; choose one of "
                f"{sorted(RESAMPLING)}"
            )
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(
                f"image resize_mode {self.resize_mode!r} is not supported; choose one of "
                f"{list(RESIZE_MODES)}"
            )
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"image mean {self.mean} and std {self.std} need 3 values, std > 0")

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) after the resize: the shorter side becomes size, the longer one
        keeps the ratio rounded down (transformers' and torchvision's rule)."""
        if self.resize_mode == "squash":
            return self.size, self.size
        if width <= height:
            return self.size, int(self.size * height / width)
        return int(self.size * width / height), self.size

    def picture(self, rgb: Image.Image) -> np.ndarray:
        """An RGB picture -> uint8 (size, size, 3): resized, then centre-cropped."""
        target = self.resized_size(*rgb.size)
        if rgb.size != target:
            rgb = rgb.resize(target, RESAMPLING[self.interpolation])
        pixels = np.asarray(rgb, dtype=np.uint8)
        height, width = pixels.shape[:2]
        if height < self.size or width < self.size:  # only a degenerate 0-px resize gets here
            raise ValueError(f"a {width}x{height} picture cannot be cropped to {self.size}")
        top, left = (height - self.size) // 2, (width - self.size) // 2
        return pixels[top : top + self.size, left : left + self.size].copy()

    def decode(self, data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
        """Image bytes -> uint8 (size, size, 3), upright as EXIF says."""
        return self.picture(decode_rgb(data, max_pixels))

    def load(self, location: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
        """A file or tar member (`archive.tar#member`) -> uint8 (size, size, 3). Raises on a
        bad image; load_batch turns that into an ImageFailure."""
        return self.decode(read_image_bytes(location), max_pixels)

    def normalize(self, images: np.ndarray) -> torch.Tensor:
        """uint8 (B, size, size, 3) -> float32 (B, 3, size, size), the tower's input."""
        return self._per_image(normalize_pixels(images, self.mean, self.std))

    def normalize_unit(self, unit: torch.Tensor) -> torch.Tensor:
        """float (B, 3, size, size) in [0, 1] -> the tower's input (the pretraining's
        perturbed copies, which are no longer uint8)."""
        return self._per_image(standardize(unit, self.mean, self.std))

    def _per_image(self, x: torch.Tensor) -> torch.Tensor:
        if not self.per_image:
            return x
        centre = x.mean(dim=(2, 3), keepdim=True)
        spread = x.std(dim=(2, 3), keepdim=True)
        return (x - centre) / (spread + PER_IMAGE_FLOOR)

    def load_batch(
        self,
        ids: Sequence[str],
        locations: Sequence[str | Path],
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> tuple[np.ndarray, list[int], list[ImageFailure]]:
        """Many images: (uint8 stack of the good ones, their positions, ImageFailure each)."""
        return decode_batch(ids, locations, partial(self.load, max_pixels=max_pixels), self.size)


def open_clip_transform(
    preprocess_cfg: Mapping[str, Any], size: int, per_image: bool = False
) -> ImageTransform:
    """The transform an open_clip model declares (its visual.preprocess_cfg: mean, std,
    interpolation, resize_mode from the weights' tag), at the tower's input size; per_image
    for the project's stand-in architectures."""
    return ImageTransform(
        size=int(size),
        mean=tuple(float(v) for v in preprocess_cfg.get("mean", OPENAI_MEAN)),
        std=tuple(float(v) for v in preprocess_cfg.get("std", OPENAI_STD)),
        interpolation=str(preprocess_cfg.get("interpolation", "bicubic")),
        resize_mode=str(preprocess_cfg.get("resize_mode", "shortest")),
        per_image=per_image,
    )


def processor_transform(config: Mapping[str, Any], image_size: int) -> ImageTransform:
    """The transform a transformers CLIPImageProcessor config (preprocessor_config.json)
    describes; refuses the settings this transform does not compute, naming them."""
    where = "preprocessor_config.json"
    for flag in ("do_resize", "do_center_crop", "do_rescale", "do_normalize"):
        if config.get(flag, True) is not True:
            raise ValueError(f"{where}: {flag}=false is not supported (CLIP's preprocessing)")
    if abs(float(config.get("rescale_factor", 1 / 255)) - 1 / 255) > 1e-12:
        raise ValueError(f"{where}: rescale_factor must be 1/255")
    size = config.get("size", {"shortest_edge": image_size})
    crop = config.get("crop_size", {"height": image_size, "width": image_size})
    if isinstance(size, int):
        size = {"shortest_edge": size}
    if isinstance(crop, int):
        crop = {"height": crop, "width": crop}
    shortest = size.get("shortest_edge")
    if shortest is not None:
        mode = "shortest"
    elif size.get("height") == size.get("width") and size.get("height") is not None:
        mode, shortest = "squash", size["height"]
    else:
        raise ValueError(f"{where}: size {size} is neither a shortest_edge nor a square")
    if crop.get("height") != crop.get("width") or crop.get("height") != shortest:
        raise ValueError(
            f"{where}: crop_size {crop} must be a square of the resize size {shortest}"
        )
    if int(shortest) != int(image_size):
        raise ValueError(
            f"{where}: images of {shortest} px, but the vision tower takes {image_size} px"
        )
    resample = config.get("resample", 3)
    if resample not in _PIL_CODES:
        raise ValueError(f"{where}: resample={resample} is not supported (3 bicubic, 2 bilinear)")
    return ImageTransform(
        size=int(shortest),
        mean=tuple(float(v) for v in config.get("image_mean", OPENAI_MEAN)),
        std=tuple(float(v) for v in config.get("image_std", OPENAI_STD)),
        interpolation=_PIL_CODES[resample],
        resize_mode=mode,
        per_image=_per_image_flag(config.get(PER_IMAGE_KEY, False), where),
    )


def _per_image_flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where}: {PER_IMAGE_KEY} must be true or false, got {value!r}")
    return value
