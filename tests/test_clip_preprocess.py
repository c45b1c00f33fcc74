"""CLIP's preprocessing (data/clip_preprocess.py) on real photos, against transformers' own
CLIPImageProcessor built locally with openai/clip-vit-large-patch14's values (no download).

Both transformers backends are compared: the Pillow one (what G3's and GeoCLIP's code ran,
transformers 4's default) must be equal to 1e-5; the torchvision one (transformers 5's default)
resizes with its own bicubic kernel and may differ by one grey level on a few pixels, which is
measured and bounded here (docs/profiles.md, "CLIP's preprocessing").
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from matplotlib import cbook
from PIL import Image
from sklearn.datasets import load_sample_image

from geoloc_core.data.clip_preprocess import ImageTransform, processor_transform
from geoloc_core.data.images import load_rgb, normalize_pixels

# openai/clip-vit-large-patch14's preprocessor_config.json, as it is on the hub.
OPENAI_L14 = {
    "crop_size": 224,
    "do_center_crop": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "size": 224,
}


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, tuple[np.ndarray, object]]:
    """name -> (RGB array, a lossless PNG file of it)."""
    folder = tmp_path_factory.mktemp("photos")
    arrays = {n: load_sample_image(n) for n in ("china.jpg", "flower.jpg")}
    with cbook.get_sample_data("grace_hopper.jpg") as stream:
        arrays["grace_hopper.jpg"] = np.asarray(Image.open(stream).convert("RGB"))
    found = {}
    for name, array in arrays.items():
        file = folder / f"{name}.png"
        Image.fromarray(array).save(file)
        found[name] = (array, file)
    return found


def _processor_kwargs() -> dict:
    return {
        "size": {"shortest_edge": OPENAI_L14["size"]},
        "crop_size": {"height": OPENAI_L14["crop_size"], "width": OPENAI_L14["crop_size"]},
        "resample": OPENAI_L14["resample"],
        "image_mean": OPENAI_L14["image_mean"],
        "image_std": OPENAI_L14["image_std"],
    }


def test_equals_clip_image_processor_on_real_photos(photos) -> None:
    from transformers import CLIPImageProcessor, CLIPImageProcessorPil

    transform = processor_transform(OPENAI_L14, 224)
    assert transform == ImageTransform(224)  # CLIP's values: bicubic, shortest side, OpenAI stats
    pil_backend = CLIPImageProcessorPil(**_processor_kwargs())
    torch_backend = CLIPImageProcessor(**_processor_kwargs())
    one_level = 1 / 255 / min(transform.std) + 1e-5
    for name, (array, file) in photos.items():
        assert min(array.shape[:2]) > 224 and array.shape[0] != array.shape[1], name
        ours = transform.normalize(transform.load(file)[None]).numpy()[0]
        theirs = pil_backend(images=Image.fromarray(array), return_tensors="np")
        assert ours.shape == (3, 224, 224)
        np.testing.assert_allclose(ours, theirs["pixel_values"][0], rtol=0, atol=1e-5)
        fast = torch_backend(images=Image.fromarray(array), return_tensors="np")
        diff = np.abs(ours - fast["pixel_values"][0])
        assert diff.max() <= one_level, name  # at most one grey level
        assert (diff > 1e-5).mean() < 0.01, name  # on under 1% of the values


def test_crop_offset_rounds_down_as_transformers() -> None:
    """640x427 -> 335x224; the crop starts at (335-224)//2 = 55, where torchvision's
    CenterCrop (open_clip's own preprocess) rounds 55.5 to 56."""
    ramp = np.tile(np.arange(640, dtype=np.float64) * 255 / 639, (427, 1))
    picture = Image.fromarray(np.stack([ramp] * 3, axis=-1).astype(np.uint8))
    transform = ImageTransform(224)
    resized = np.asarray(picture.resize((335, 224), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(transform.picture(picture), resized[:, 55 : 55 + 224])


def test_square_input_is_the_squash_it_replaces(photos) -> None:
    """On a square image of the tower's size (the demo world's), CLIP's transform computes
    exactly what the former squash did, bit for bit: the demo's features stay identical."""
    _, file = photos["flower.jpg"]
    square = file.with_name("square.png")
    Image.open(file).resize((64, 64)).save(square)
    transform = ImageTransform(64)
    new = transform.normalize(transform.load(square)[None])
    old = normalize_pixels(load_rgb(square, 64)[None], transform.mean, transform.std)
    assert new.dtype == old.dtype and bool((new == old).all())


def test_unsupported_processor_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="do_center_crop=false"):
        processor_transform({**OPENAI_L14, "do_center_crop": False}, 224)
    with pytest.raises(ValueError, match="vision tower takes 336"):
        processor_transform(OPENAI_L14, 336)
    with pytest.raises(ValueError, match="resize_mode 'longest'"):
        ImageTransform(224, resize_mode="longest")


def _street_like(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(30, 220, (2, 16, 16, 3), dtype=np.uint8)


def test_per_image_standardisation_takes_out_light_and_tint() -> None:
    """A darker, tinted copy of a view (each channel scaled) reaches the tower as nearly the
    same input with per_image, and as a very different one without it."""
    views = _street_like(0)
    dimmed = (views.astype(np.float64) * np.array([0.45, 0.5, 0.7])).round().astype(np.uint8)
    plain, per_image = ImageTransform(16), ImageTransform(16, per_image=True)
    gap_plain = float((plain.normalize(views) - plain.normalize(dimmed)).abs().mean())
    gap_per_image = float((per_image.normalize(views) - per_image.normalize(dimmed)).abs().mean())
    assert gap_per_image < 0.05 < 0.5 < gap_plain, (gap_per_image, gap_plain)
    out = per_image.normalize(views)
    assert torch.allclose(out.mean(dim=(2, 3)), torch.zeros(2, 3), atol=1e-5)
    assert float(out.std(dim=(2, 3)).max()) < 1.0  # the floor keeps it at or below unit spread


def test_per_image_keeps_a_flat_image_flat() -> None:
    flat = np.full((1, 8, 8, 3), 128, np.uint8)
    out = ImageTransform(8, per_image=True).normalize(flat)
    assert bool(torch.isfinite(out).all()) and float(out.abs().max()) < 1e-5


def test_per_image_of_uint8_and_of_unit_pixels_agree() -> None:
    """The pretraining's perturbed copies (floats in [0, 1]) go through the same steps."""
    views = _street_like(1)
    transform = ImageTransform(16, per_image=True)
    unit = torch.from_numpy(views).permute(0, 3, 1, 2).float() / 255.0
    torch.testing.assert_close(transform.normalize_unit(unit), transform.normalize(views))


def test_per_image_travels_in_the_processor_config(tmp_path) -> None:
    from geoloc_core.data.clip_preprocess import PER_IMAGE_KEY
    from geoloc_core.encoders.hf_clip import write_processor_config

    for per_image in (False, True):
        transform = ImageTransform(64, per_image=per_image)
        config = json.loads(write_processor_config(tmp_path, transform).read_text())
        assert (PER_IMAGE_KEY in config) is per_image
        assert processor_transform(config, 64) == transform
    with pytest.raises(ValueError, match=f"{PER_IMAGE_KEY} must be true or false"):
        processor_transform({**OPENAI_L14, PER_IMAGE_KEY: "yes"}, 224)


def test_only_the_stand_in_architecture_standardises_per_image() -> None:
    from geoloc_core.encoders.clip_towers import TowerSpec, build_clip

    assert build_clip(TowerSpec("geoloc-demo-vit-tiny", None)).transform.per_image
    assert not build_clip(TowerSpec("ViT-B-32", None)).transform.per_image
