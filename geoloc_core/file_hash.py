"""Content hashes of files, kept free of heavy imports so every layer can fingerprint cheaply."""

import hashlib
import os
import time
from collections.abc import Iterable
from pathlib import Path

# (path, size, mtime, ctime, inode) of each file this process has verified -> its digest: a file
# loaded many times (the index per candidates partition, a shard per index pass) is read once
_verified: dict[tuple[str, int, int, int, int], str] = {}
# File times tick coarsely (a few ms): a file changed this recently could change again with the
# same times and size, so it is re-hashed until it is older (git's "racily clean" entries).
RACY_WINDOW_NS = 2_000_000_000


def digest(*parts: object) -> str:
    """A short digest of values (settings, file hashes): a fingerprint of what made a result."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks so large weights never sit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class CorruptFileError(ValueError):
    """A file whose bytes are not those written: truncated, bit-flipped or replaced."""


def check_sha256(path: Path, expected: str | None, fix: str) -> None:
    """Refuse a file unless its SHA-256 is the one recorded when it was written, so a damaged
    artifact is never loaded; `fix` says how to rebuild it."""
    if not expected:
        raise CorruptFileError(
            f"{path} has no recorded checksum (written by an older geoloc or by hand): {fix}"
        )
    version = _file_version(path)
    if _verified.get(version) == expected:
        return
    actual = file_sha256(path)
    if actual != expected:
        raise CorruptFileError(
            f"{path} is damaged: its SHA-256 is {actual[:12]}…, {expected[:12]}… was "
            f"written (truncated, bit-flipped or replaced): {fix}"
        )
    if time.time_ns() - version[2] > RACY_WINDOW_NS:  # by its mtime
        _verified[version] = actual


def _file_version(path: Path) -> tuple[str, int, int, int, int]:
    """What changes whenever a file's bytes are rewritten, replaced or truncated."""
    stat = os.stat(path)
    return (os.path.abspath(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


def content_digest(files: Iterable[Path]) -> str:
    """A digest of the files' bytes (folders: every file in them, by relative path): what a
    step wrote, so a re-run that writes identical bytes changes nothing downstream."""
    digest = hashlib.sha256()
    for item in files:
        item = Path(item)
        members = sorted(p for p in item.rglob("*") if p.is_file()) if item.is_dir() else [item]
        for member in members:
            name = member.relative_to(item) if item.is_dir() else member.name
            digest.update(str(name).encode() + b"\0" + file_sha256(member).encode())
    return digest.hexdigest()[:24]
