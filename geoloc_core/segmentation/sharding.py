"""Which shard an image id belongs to, and what the shard's partition key and file are called.

A stable hash (sha1 of the UTF-8 id), not Python's salted hash(): the same id lands in the same
shard in every process, on every machine, forever.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from geoloc_core.segmentation.errors import SegmentationError

SHARD_FILE = re.compile(r"^shard-(\d{5})-of-(\d{5})\.npz$")


def shard_of(image_id: str, n_shards: int) -> int:
    digest = hashlib.sha1(image_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n_shards


def shard_keys(n_shards: int) -> list[str]:
    """Dagster partition keys "000", "001", ...: zero-padded so they sort in shard order."""
    width = max(3, len(str(n_shards - 1)))
    return [f"{index:0{width}d}" for index in range(n_shards)]


def shard_index(key: str, n_shards: int, setting: str) -> int:
    """The shard a partition key names, refused (naming the setting that sets the shard
    count) when it is not one of the n_shards keys."""
    if key not in shard_keys(n_shards):
        raise SegmentationError(
            f"shard key {key!r} is not one of the {n_shards} shards of {setting}; "
            "partition keys follow params.yaml"
        )
    return int(key)


def shard_file_name(index: int, n_shards: int) -> str:
    """The shard count is in the name, so files of another layout are never mistaken for these."""
    return f"shard-{index:05d}-of-{n_shards:05d}.npz"


def parse_shard_file_name(name: str) -> tuple[int, int] | None:
    """(index, n_shards) of a shard file name, None for any other file."""
    match = SHARD_FILE.match(name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def single_layout(
    layouts: dict[int, dict[int, Path]],
    directory: Path,
    asset: str,
    setting: str,
    error: type[Exception],
) -> tuple[dict[int, Path], int]:
    """The shards of the one layout (shard count) found; none or a mix is an error to fix."""
    if not layouts:
        raise error(f"no {asset} shards in {directory}: materialize {asset} first")
    if len(layouts) > 1:
        raise error(
            f"{directory} mixes shard layouts {sorted(layouts)} ({setting} changed): "
            f"re-materialize {asset}, which removes the old layout"
        )
    [(n_shards, shards)] = layouts.items()
    return shards, n_shards
