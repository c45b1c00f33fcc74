"""The segmentation cache's small parts: settings, sharding, label maps, noise, the file format."""

from __future__ import annotations

import numpy as np
import pytest

from geoloc_core.ade20k import NUM_CLASSES
from geoloc_core.segmentation.container import (
    CorruptFileError,
    memmap_member,
    read_arrays,
    write_arrays,
)
from geoloc_core.segmentation.errors import SegmentationError
from geoloc_core.segmentation.labelmaps import class_histogram, downsample_mode
from geoloc_core.segmentation.noise import add_label_noise
from geoloc_core.segmentation.settings import SegmentationSettings
from geoloc_core.segmentation.sharding import shard_keys, shard_of

SECTION = {
    "provider": "demo",
    "model_id": "nvidia/segformer-b5-finetuned-ade-640-640",
    "input_resolution": 512,
    "output_resolution": 32,
    "label_noise": 0.0,
    "label_noise_unit": "pixel",
    "condition_errors": False,  # exact ground truth: these tests check the cache mechanics
    "seed": 0,
    "n_shards": 2,
    "batch_size": 8,
    "device": "auto",
    "num_threads": 1,
    "progress": False,
}


def settings(**changes) -> SegmentationSettings:
    return SegmentationSettings.from_section({**SECTION, **changes})


def test_settings_refuse_missing_unknown_and_bad_values():
    partial = {k: v for k, v in SECTION.items() if k != "seed"}
    with pytest.raises(SegmentationError, match=r"missing \['seed'\]"):
        SegmentationSettings.from_section(partial)
    with pytest.raises(SegmentationError, match=r"unknown \['colour'\]"):
        SegmentationSettings.from_section({**SECTION, "colour": 1})
    with pytest.raises(SegmentationError, match="provider='deeplab'"):
        settings(provider="deeplab")
    with pytest.raises(SegmentationError, match=r"label_noise=1\.5"):
        settings(label_noise=1.5)
    with pytest.raises(SegmentationError, match="n_shards=0"):
        settings(n_shards=0)


def test_fingerprint_follows_content_settings_only():
    base = settings().fingerprint()
    assert settings(batch_size=64, device="cpu", num_threads=4, progress=True).fingerprint() == base
    assert settings(n_shards=16).fingerprint() == base  # the layout is in the file name
    assert settings(output_resolution=16).fingerprint() != base
    assert settings(label_noise=0.1).fingerprint() != base
    # the demo provider ignores the model; a model provider does not
    assert settings(model_id="other").fingerprint() == base
    seg = settings(provider="segformer").fingerprint()
    assert settings(provider="segformer", model_id="other").fingerprint() != seg
    assert settings(provider="segformer", input_resolution=640).fingerprint() != seg


def test_shards_are_stable_and_spread():
    ids = [f"img-{i}" for i in range(2000)]
    first = [shard_of(i, 8) for i in ids]
    assert first == [shard_of(i, 8) for i in ids]
    assert shard_of("img-0", 8) == 1  # pinned: a change would silently move every id
    counts = np.bincount(first, minlength=8)
    assert counts.min() > 180 and counts.max() < 320
    assert shard_keys(3) == ["000", "001", "002"]
    assert shard_keys(1500)[-1] == "1499"


def test_histogram_and_mode_downsampling():
    label_map = np.zeros((4, 4), dtype=np.uint8)
    label_map[:2, :2] = [[7, 7], [7, 3]]  # block mode 7
    label_map[:2, 2:] = [[3, 3], [7, 7]]  # tie 3/7 -> lowest id
    label_map[2:, :] = 149
    assert downsample_mode(label_map, 2).tolist() == [[7, 3], [149, 149]]
    histogram = class_histogram(label_map)
    assert histogram.dtype == np.float32 and histogram.shape == (NUM_CLASSES,)
    assert histogram[149] == pytest.approx(0.5) and histogram.sum() == pytest.approx(1.0)
    uneven = downsample_mode(np.arange(25, dtype=np.uint8).reshape(5, 5), 3)
    assert uneven.shape == (3, 3) and set(uneven.ravel()) <= set(range(25))
    assert downsample_mode(label_map, 8).shape == (8, 8)  # upsampling: nearest


def test_pixel_noise_is_exact_wrong_and_seeded():
    rng = np.random.default_rng(0)
    clean = rng.integers(0, NUM_CLASSES, size=(64, 64)).astype(np.uint8)
    noisy = add_label_noise(clean, 0.1, "pixel", 3, "img-a")
    changed = noisy != clean
    assert changed.sum() == round(0.1 * clean.size)  # every chosen pixel gets a wrong class
    assert noisy.max() < NUM_CLASSES
    assert np.array_equal(noisy, add_label_noise(clean, 0.1, "pixel", 3, "img-a"))
    assert not np.array_equal(noisy, add_label_noise(clean, 0.1, "pixel", 3, "img-b"))
    assert not np.array_equal(noisy, add_label_noise(clean, 0.1, "pixel", 4, "img-a"))
    assert add_label_noise(clean, 0.0, "pixel", 3, "img-a") is clean


def test_class_noise_relabels_whole_regions():
    clean = np.repeat(np.arange(8, dtype=np.uint8), 8).reshape(8, 8)
    noisy = add_label_noise(clean, 1.0, "class", 0, "img")
    for label in range(8):
        region = noisy[clean == label]
        assert len(set(region.tolist())) == 1 and region[0] != label


def test_container_is_reproducible_checked_and_mappable(tmp_path):
    arrays = {
        "maps": np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4),
        "ids": np.array([b"a", b"bb"]),
    }
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    digest = write_arrays(first, arrays, {"x": 1})
    write_arrays(second, arrays, {"x": 1})
    assert first.read_bytes() == second.read_bytes()
    loaded, meta = read_arrays(first)
    assert meta["content_sha256"] == digest and meta["x"] == 1
    assert np.array_equal(loaded["maps"], arrays["maps"])
    assert np.array_equal(np.load(first)["maps"], arrays["maps"])  # plain numpy reads it too
    assert np.array_equal(memmap_member(first, "maps"), arrays["maps"])
    data = bytearray(first.read_bytes())
    data[data.index(bytes(range(16, 32)))] ^= 0xFF  # a byte inside the label maps
    first.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match=str(first)):
        read_arrays(first)
    assert not list(tmp_path.glob(".*partial"))
