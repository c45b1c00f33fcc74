"""Content hashes of files, kept free of heavy imports so every layer can fingerprint cheaply."""

import hashlib
from pathlib import Path


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
    actual = file_sha256(path)
    if actual != expected:
        raise CorruptFileError(
            f"{path} is damaged: its SHA-256 is {actual[:12]}…, {expected[:12]}… was "
            f"written (truncated, bit-flipped or replaced): {fix}"
        )
