"""What a fetched file is checked against: its recorded sha256 and size, and the hub's own
ETag (the sha256 of an LFS file, the git blob id of a small one)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from geoloc_core.file_hash import file_sha256

SHA256 = re.compile(r"^[0-9a-f]{64}$")
GIT_SHA1 = re.compile(r"^[0-9a-f]{40}$")


class FetchError(RuntimeError):
    """A fetch that cannot complete: the message says which file and what to do."""


def git_blob_sha1(path: Path) -> str:
    """The id git (and the hub, as the ETag of a non-LFS file) gives these bytes."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Expected:
    """Everything known about a file's bytes before looking at them (any field may be None)."""

    sha256: str | None = None
    size: int | None = None
    etag: str | None = None  # the hub's ETag: an LFS sha256 or a git blob id

    def merged(self, other: Expected, what: str) -> Expected:
        """Both sources of knowledge at once; a disagreement means one source is wrong."""
        for name in ("sha256", "size"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is not None and theirs is not None and mine != theirs:
                raise FetchError(
                    f"{what}: the catalogue or fetch.lock says {name} {mine} but the source "
                    f"states {theirs}; if the source changed on purpose, update the catalogue "
                    "(geoloc_core/fetch/catalogue.yaml) or delete the entry from fetch.lock"
                )
        for mine, theirs in ((self.sha256, other.lfs_sha256), (other.sha256, self.lfs_sha256)):
            if mine and theirs and mine != theirs:
                raise FetchError(
                    f"{what}: the catalogue or fetch.lock says sha256 {mine} but the hub states "
                    f"{theirs} (its LFS ETag); fix the catalogue or delete the fetch.lock record"
                )
        return Expected(
            self.sha256 or other.sha256,
            self.size if self.size is not None else other.size,
            self.etag or other.etag,
        )

    @property
    def lfs_sha256(self) -> str | None:
        return self.etag if self.etag and SHA256.fullmatch(self.etag) else None

    @property
    def known_sha256(self) -> str | None:
        return self.sha256 or self.lfs_sha256

    @property
    def checkable(self) -> bool:
        """Whether the bytes can be judged at all (else the first fetch records them)."""
        return bool(self.known_sha256 or (self.etag and GIT_SHA1.fullmatch(self.etag)))


def mismatch(path: Path, expected: Expected) -> tuple[str, str]:
    """('' , sha256) when path matches everything expected; else (why, sha256)."""
    size = path.stat().st_size
    if expected.size is not None and size != expected.size:
        return f"size {size} instead of {expected.size}", ""
    actual = file_sha256(path)
    want = expected.known_sha256
    if want and actual != want:
        return f"sha256 {actual[:12]}… instead of {want[:12]}…", actual
    if not want and expected.etag and GIT_SHA1.fullmatch(expected.etag):
        blob = git_blob_sha1(path)
        if blob != expected.etag:
            return f"git blob id {blob[:12]}… instead of the hub's {expected.etag[:12]}…", actual
    return "", actual
