"""The backbone-features cache with the real demo tower (random weights): a finished shard is
kept without loading the tower, other settings or other ids recompute it, and a shard that no
longer reads back as written (flipped bytes, a cut file, a broken meta.json) is recomputed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from geoloc_core.encoders.backbone import FeatureSpec
from geoloc_core.encoders.clip_towers import ClipTowers, TowerSpec, build_clip, freeze
from geoloc_core.training.feature_cache import POOLED, TOKENS, FeatureCache, read_meta
from geoloc_core.training.feature_extraction import (
    ShardOutcome,
    WorkItem,
    compute_feature_shard,
    extract_features,
)

ARCHITECTURE = "geoloc-demo-vit-tiny"
IMAGE_SIZE = 64
SPEC = FeatureSpec(ARCHITECTURE, None, token_grid=2, weights_sha256="random-seed-0")


@pytest.fixture(scope="module")
def towers() -> ClipTowers:
    torch.manual_seed(0)
    return freeze(build_clip(TowerSpec(ARCHITECTURE, None)))


@pytest.fixture
def images(tmp_path: Path) -> list[WorkItem]:
    """Four small photos and one file that is not an image, in id order."""
    rng = np.random.default_rng(0)
    items = []
    for number in range(4):
        path = tmp_path / "images" / f"img-{number}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)).save(path)
        items.append(WorkItem(f"img-{number}", path))
    broken = tmp_path / "images" / "img-9.png"
    broken.write_bytes(b"not an image")
    return [*items, WorkItem("img-9", broken)]


class Towers:
    """The real towers handed out by a factory that counts how often the shard asked for them."""

    def __init__(self, towers: ClipTowers) -> None:
        self.towers = towers
        self.loads = 0

    def __call__(self) -> ClipTowers:
        self.loads += 1
        return self.towers


def compute(
    directory: Path,
    factory: Callable[[], ClipTowers],
    items: list[WorkItem],
    spec: FeatureSpec = SPEC,
    log: Callable[[str], None] = lambda _: None,
) -> ShardOutcome:
    return compute_feature_shard(directory, factory, spec, IMAGE_SIZE, items, 0, 1, 2, log)


def test_first_run_writes_what_the_tower_computes(towers, images, tmp_path) -> None:
    factory = Towers(towers)
    outcome = compute(tmp_path / "features", factory, images)
    assert not outcome.kept and factory.loads == 1
    assert outcome.images == 4 and list(outcome.failures) == ["img-9"]
    assert outcome.digest == read_meta(outcome.path)["digest"]
    expected = extract_features(towers, images, SPEC.token_grid, 2)
    cache = FeatureCache(tmp_path / "features")
    assert cache.ids() == ["img-0", "img-1", "img-2", "img-3"]
    pooled, tokens = cache.load(["img-3", "img-0"])
    assert pooled.shape == (2, 128) and tokens.shape == (2, 4, 128)
    np.testing.assert_array_equal(pooled, expected.pooled[[3, 0]])
    np.testing.assert_array_equal(tokens, expected.tokens[[3, 0]])
    with pytest.raises(KeyError, match="its image failed"):
        cache.load(["img-9"])


def test_finished_shard_is_kept_without_loading_the_tower(towers, images, tmp_path) -> None:
    first = compute(tmp_path / "features", Towers(towers), images)
    factory, said = Towers(towers), []
    again = compute(tmp_path / "features", factory, images, log=said.append)
    assert again.kept and factory.loads == 0
    assert (again.images, again.failures, again.digest) == (4, first.failures, first.digest)
    assert said == ["backbone features shard-00000-of-00001: kept (same backbone, same ids)"]


def test_other_settings_or_other_ids_recompute(towers, images, tmp_path) -> None:
    directory = tmp_path / "features"
    first = compute(directory, Towers(towers), images)
    finer = FeatureSpec(ARCHITECTURE, None, token_grid=4, weights_sha256="random-seed-0")
    factory = Towers(towers)
    regridded = compute(directory, factory, images, spec=finer)
    assert not regridded.kept and factory.loads == 1 and regridded.digest != first.digest
    assert FeatureCache(directory).load(["img-0"])[1].shape == (1, 16, 128)
    factory = Towers(towers)
    fewer = compute(directory, factory, images[1:], spec=finer)
    assert not fewer.kept and factory.loads == 1 and fewer.images == 3
    assert FeatureCache(directory).ids() == ["img-1", "img-2", "img-3"]


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


CORRUPTIONS = {
    "flipped pooled byte": (lambda shard: flip_last_byte(shard / POOLED), "do not match"),
    "cut tokens file": (
        lambda shard: (shard / TOKENS).write_bytes((shard / TOKENS).read_bytes()[:200]),
        "unreadable",
    ),
    "broken meta.json": (
        lambda shard: (shard / "meta.json").write_text('{"format": "geoloc-feat'),
        "unreadable (JSONDecodeError",
    ),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corrupt_shard_is_recomputed(towers, images, tmp_path, corruption: str) -> None:
    directory = tmp_path / "features"
    first = compute(directory, Towers(towers), images)
    original = {name: (first.path / name).read_bytes() for name in (POOLED, TOKENS)}
    damage, reason = CORRUPTIONS[corruption]
    damage(first.path)
    factory, said = Towers(towers), []
    redone = compute(directory, factory, images, log=said.append)
    assert not redone.kept and factory.loads == 1
    assert len(said) == 1 and "recomputing" in said[0] and reason in said[0]
    assert redone.digest == first.digest == read_meta(redone.path)["digest"]
    assert {name: (redone.path / name).read_bytes() for name in original} == original
    assert compute(directory, Towers(towers), images).kept  # sound again
