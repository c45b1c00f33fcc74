"""Random access into big uncompressed tar archives (MP16-Pro ships its photos in them).

Scanning a 4.7M-member tar takes minutes, so each archive is scanned once and its index
(member name -> byte offset and size) is cached as a .npz keyed by the archive's path, size
and modification time: a changed archive gets a new index, never a stale one. Reading a
member is then one seek and one read.

The cache lives outside the raw data (writing next to the archive would change the data's
DVC hash): $GEOLOC_TAR_INDEX_DIR, else the project's artifacts/cache/tar-index, else the
user cache directory.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from filelock import FileLock

from geoloc_core.data.locations import TarMember
from geoloc_core.params import ParamsError, find_root

INDEX_DIR_ENV = "GEOLOC_TAR_INDEX_DIR"
PROJECT_INDEX_DIR = Path("artifacts") / "cache" / "tar-index"
_CLEAR_EVERY = 10_000


class TarIndexError(OSError):
    """An archive that cannot be indexed or read; the message names it and the fix."""


@dataclass(frozen=True)
class TarIndex:
    """Sorted member names (UTF-8 bytes) with the offset and size of each member's data."""

    archive: Path
    names: np.ndarray
    offsets: np.ndarray
    sizes: np.ndarray

    def __len__(self) -> int:
        return len(self.names)

    def find(self, member: str) -> tuple[int, int] | None:
        """(offset, size) of a member's bytes, or None if the archive lacks it."""
        encoded = _normalise(member).encode()
        if len(encoded) > self.names.dtype.itemsize:
            return None  # longer than every stored name (a cast would truncate it)
        key = np.array(encoded, dtype=self.names.dtype)
        pos = int(np.searchsorted(self.names, key))
        if pos < len(self.names) and self.names[pos] == key:
            return int(self.offsets[pos]), int(self.sizes[pos])
        return None

    def member_names(self) -> list[str]:
        return [name.decode() for name in self.names.tolist()]


def _normalise(member: str) -> str:
    return member[2:] if member.startswith("./") else member


def scan_archive(archive: Path) -> TarIndex:
    """Read every header once; regular files only, the last copy of a repeated name wins."""
    names: list[bytes] = []
    offsets: list[int] = []
    sizes: list[int] = []
    try:
        with tarfile.open(archive, mode="r:") as tar:
            while (info := tar.next()) is not None:
                if info.isfile():
                    names.append(_normalise(info.name).encode())
                    offsets.append(info.offset_data)
                    sizes.append(info.size)
                if len(tar.members) >= _CLEAR_EVERY:
                    tar.members.clear()  # TarFile keeps every header; we only need our arrays
    except tarfile.ReadError as exc:
        raise TarIndexError(
            f"{archive} is not an uncompressed tar archive ({exc}); compressed archives "
            "cannot be read at random, so unpack it or repack it as a plain .tar"
        ) from exc
    name_array = np.array(names, dtype=bytes) if names else np.array([], dtype="S1")
    offset_array = np.array(offsets, dtype=np.int64)
    size_array = np.array(sizes, dtype=np.int64)
    order = np.argsort(name_array, kind="stable")
    name_array, offset_array, size_array = name_array[order], offset_array[order], size_array[order]
    keep = np.ones(len(name_array), dtype=bool)
    keep[:-1] = name_array[1:] != name_array[:-1]  # stable sort: the last copy comes last
    return TarIndex(archive, name_array[keep], offset_array[keep], size_array[keep])


def default_index_dir(archive: Path) -> Path:
    """Where an archive's index is cached (see the module docstring)."""
    configured = os.environ.get(INDEX_DIR_ENV)
    if configured:
        return Path(configured)
    try:
        return find_root(Path(archive).resolve().parent) / PROJECT_INDEX_DIR
    except ParamsError:
        cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(cache_home) / "geoloc" / "tar-index"


def index_file(archive: Path, index_dir: Path) -> Path:
    """The cache file name: changes whenever the archive's path, size or mtime changes."""
    resolved = Path(archive).resolve()
    stat = resolved.stat()
    path_key = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    return index_dir / f"{resolved.name}-{path_key}-{stat.st_size}-{stat.st_mtime_ns}.npz"


def load_tar_index(archive: str | Path, index_dir: Path | None = None) -> TarIndex:
    """The archive's index: from this process's memory, else the disk cache, else a scan."""
    archive = Path(archive)
    if not archive.is_file():
        raise TarIndexError(f"archive {archive} does not exist; check params data.*_archives")
    stat = archive.stat()
    folder = Path(index_dir) if index_dir is not None else default_index_dir(archive)
    return _cached_index(str(archive.resolve()), stat.st_size, stat.st_mtime_ns, str(folder))


@lru_cache(maxsize=8)
def _cached_index(archive: str, size: int, mtime_ns: int, index_dir: str) -> TarIndex:
    del size, mtime_ns  # part of the memo key only: a changed archive is a new entry
    path = Path(archive)
    folder = Path(index_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = index_file(path, folder)
    with FileLock(str(target) + ".lock"):
        if not target.is_file():
            index = scan_archive(path)
            tmp = target.with_name(target.name + ".tmp.npz")
            np.savez(tmp, names=index.names, offsets=index.offsets, sizes=index.sizes)
            tmp.replace(target)
            return index
    with np.load(target) as stored:
        return TarIndex(path, stored["names"], stored["offsets"], stored["sizes"])


def read_member(location: TarMember) -> bytes:
    """One member's bytes; FileNotFoundError when the archive or the member is absent."""
    if not location.archive.is_file():
        raise FileNotFoundError(f"archive not found: {location.archive}")
    found = load_tar_index(location.archive).find(location.member)
    if found is None:
        raise FileNotFoundError(f"no member '{location.member}' in {location.archive}")
    offset, size = found
    with open(location.archive, "rb") as handle:
        handle.seek(offset)
        data = handle.read(size)
    if len(data) != size:
        raise TarIndexError(
            f"{location.archive} ends inside member '{location.member}' "
            f"({len(data)} of {size} bytes): the archive is truncated"
        )
    return data
