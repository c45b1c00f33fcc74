"""A truncated or bit-flipped checkpoint, embedding shard or index file is refused by its
recorded SHA-256 with the asset to re-materialize, never loaded; rebuilding the damaged part
restores the same result. On a copy of the tiny project with the whole graph materialized."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from geoloc_core.file_hash import CorruptFileError
from geoloc_core.params import load_params
from geoloc_core.paths import ProjectPaths
from geoloc_core.retrieval.index import checksum_file, load_index
from geoloc_core.segmentation.sharding import shard_keys
from geoloc_core.steps.indexing import build_index, embed_reference_shard
from geoloc_core.steps.training import load_trained


@pytest.fixture
def paths(materialized_template: Path, tmp_path: Path) -> ProjectPaths:
    root = tmp_path / "project"
    shutil.copytree(materialized_template, root, ignore=shutil.ignore_patterns(".dagster"))
    return ProjectPaths(root)


def flip_byte(path: Path, offset_from_end: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0x01
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("damage", [flip_byte, truncate])
def test_a_damaged_checkpoint_is_refused(paths, damage):
    load_trained(paths)  # intact: loads
    damage(paths.model_weights)
    with pytest.raises(CorruptFileError, match=r"model\.pt is damaged.*alignment_model"):
        load_trained(paths)


@pytest.mark.parametrize("damage", [flip_byte, truncate])
def test_a_damaged_index_is_refused(paths, damage):
    vectors = load_index(paths.index_file).ntotal
    assert vectors > 0
    damage(paths.index_file)
    with pytest.raises(CorruptFileError, match=r"damaged.*re-materialize retrieval_index"):
        load_index(paths.index_file)


def test_an_index_without_its_checksum_is_refused(paths):
    checksum_file(paths.index_file).unlink()
    with pytest.raises(CorruptFileError, match="no recorded checksum"):
        load_index(paths.index_file)


def test_a_damaged_embedding_shard_is_refused_then_rebuilt(paths):
    params = load_params(paths.root)
    keys = shard_keys(params["features"]["n_shards"])
    original = load_index(paths.index_file)
    before = original.reconstruct_n(0, original.ntotal)
    vectors_file = paths.embedding_shard(keys[-1])[0]
    flip_byte(vectors_file, 8)
    with pytest.raises(CorruptFileError, match=rf"reference_embeddings\[{keys[-1]}\]"):
        build_index(paths, params["index"], keys)
    embed_reference_shard(paths, params["embeddings"], keys[-1], len(keys))  # the rebuild
    build_index(paths, params["index"], keys)
    rebuilt = load_index(paths.index_file)
    assert np.array_equal(rebuilt.reconstruct_n(0, rebuilt.ntotal), before)


def test_a_file_is_hashed_once_per_version_and_a_later_change_is_still_caught(
    tmp_path, monkeypatch
):
    """Loading the same file again costs a stat, not a re-read; a file changed in the last
    seconds is re-read each time (file times tick coarsely); rewriting it in place (same size,
    same inode) is a new version, hashed again."""
    from geoloc_core import file_hash

    reads: list[Path] = []
    real_hash = file_hash.file_sha256
    monkeypatch.setattr(file_hash, "file_sha256", lambda p: reads.append(p) or real_hash(p))
    path = tmp_path / "weights.bin"
    path.write_bytes(bytes(range(256)) * 64)
    expected = real_hash(path)
    for _ in range(2):
        file_hash.check_sha256(path, expected, "rebuild it")
    assert reads == [path, path]  # just written: racily clean, so never remembered
    old = time.time() - 60
    os.utime(path, (old, old))
    reads.clear()
    for _ in range(3):
        file_hash.check_sha256(path, expected, "rebuild it")
    assert reads == [path]
    flip_byte(path)
    with pytest.raises(CorruptFileError, match=r"weights\.bin is damaged"):
        file_hash.check_sha256(path, expected, "rebuild it")
    assert len(reads) == 2
