"""Decoding in worker processes (geoloc_core/data/loader.py): batches come back in order, so the
features and the segmentation computed with 2 workers are byte-identical to those computed in the
step's own process, and a bad image is still reported by id without sinking its batch."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from geoloc_core.data.images import load_batch, load_rgb
from geoloc_core.data.loader import LoaderOptions, chunks, decoded_batches
from geoloc_core.encoders.clip_towers import TowerSpec, build_clip, freeze
from geoloc_core.params import load_params
from geoloc_core.segmentation.providers.base import WorkItem as SegItem
from geoloc_core.segmentation.providers.demo import DemoProvider
from geoloc_core.segmentation.settings import SegmentationSettings
from geoloc_core.segmentation.shard import compute_shard
from geoloc_core.training.feature_extraction import WorkItem, extract_features

TWO_WORKERS = LoaderOptions(workers=2, prefetch=2)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[tuple[str, Path]]:
    """Nine JPEGs of varied sizes with two broken files among them, in id order."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    items = []
    for number in range(11):
        path = folder / f"p{number:02d}.jpg"
        if number == 3:
            path.write_bytes(b"")  # empty
        elif number == 8:
            path.write_bytes(b"not an image at all")
        else:
            h, w = rng.integers(30, 90, 2)
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path, quality=90)
        items.append((f"p{number:02d}", path))
    return items


def test_batches_come_back_in_order_with_failures_by_id(photos) -> None:
    ids, paths = [i for i, _ in photos], [p for _, p in photos]
    batches = chunks(ids, paths, 4)
    decode = partial(load_rgb, size=32)
    in_process = list(decoded_batches(batches, decode))
    workers = list(decoded_batches(batches, decode, options=TWO_WORKERS))
    assert [b.number for b in workers] == [0, 1, 2]
    for here, there, batch in zip(in_process, workers, batches, strict=True):
        stack, positions, failures = load_batch([i for i, _ in batch], [p for _, p in batch], 32)
        assert there.positions == here.positions == positions
        assert there.failures == here.failures == failures
        np.testing.assert_array_equal(there.numpy(), stack)
    failed = {f.id: f.reason for b in workers for f in b.failures}
    assert set(failed) == {"p03", "p08"}
    assert "empty file" in failed["p03"] and "not an image" in failed["p08"]


def test_features_from_two_workers_are_byte_identical(photos) -> None:
    torch.manual_seed(0)
    towers = freeze(build_clip(TowerSpec("geoloc-demo-vit-tiny", None)))
    items = [WorkItem(i, p) for i, p in photos]
    alone = extract_features(towers, items, 2, 3)
    pooled = extract_features(towers, items, 2, 3, loader=TWO_WORKERS)
    assert pooled.ids == alone.ids and len(alone.ids) == 9
    assert pooled.failures == alone.failures and set(alone.failures) == {"p03", "p08"}
    assert pooled.pooled.tobytes() == alone.pooled.tobytes()
    assert pooled.tokens.tobytes() == alone.tokens.tobytes()
    assert pooled.digest() == alone.digest()


def test_segmentation_shard_from_two_workers_is_byte_identical(photos, tmp_path) -> None:
    """The demo provider through compute_shard: same shard file bytes with and without workers."""
    labels = tmp_path / "labels"
    labels.mkdir()
    items = []
    for number, (image_id, path) in enumerate(photos):
        label = labels / f"{image_id}.png"
        Image.fromarray(np.full((16, 16), number % 150, np.uint8), mode="L").save(label)
        items.append(SegItem(image_id, path, label))
    section = load_params(Path(__file__).resolve().parents[1])["segmentation"]
    settings = SegmentationSettings.from_section(
        {
            **section,
            "output_resolution": 8,
            "n_shards": 1,
            "batch_size": 4,
            "progress": False,
            "condition_errors": False,
        }
    )
    files = []
    for name, options in (("alone", LoaderOptions()), ("two", TWO_WORKERS)):
        outcome = compute_shard(
            items,
            settings,
            0,
            tmp_path / name,
            tmp_path / f"{name}-parts",
            lambda: DemoProvider(condition_errors=False),
            log=lambda _: None,
            loader=options,
        )
        assert outcome.images == 9 and {f.id for f in outcome.failures} == {"p03", "p08"}
        files.append(outcome.path.read_bytes())
    assert files[0] == files[1]
