"""A file of named arrays: a zip of .npy members (np.load reads it) that is

- byte-reproducible: fixed member order and timestamps, so equal content gives equal bytes and a
  resumed run can be compared byte for byte with a from-scratch run;
- atomic: written to a temporary file in the same folder, fsynced, then renamed over the target,
  so a reader or a killed writer never sees half a file;
- self-checking: a sha256 of the content is stored inside (member `meta`), so a flipped byte is
  detected even where the zip's CRC would not be consulted;
- memory-mappable: members are stored uncompressed, so a reader maps label maps instead of
  loading whole shards.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from geoloc_core.segmentation.errors import SegmentationError

META = "meta"
DIGEST_KEY = "content_sha256"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_LOCAL_HEADER = struct.Struct("<4s5H3I2H")


class CorruptFileError(SegmentationError):
    """A file that exists but cannot be trusted (unreadable or checksum mismatch)."""


def content_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 over names, dtypes, shapes and bytes, independent of the zip container."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def write_arrays(path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> str:
    """Write atomically; returns the content digest (also stored in the file's meta)."""
    if META in arrays:
        raise ValueError(f"array name {META!r} is reserved for the file's metadata")
    digest = content_digest(arrays)
    meta_bytes = json.dumps({**meta, DIGEST_KEY: digest}, sort_keys=True).encode()
    members = {**arrays, META: np.frombuffer(meta_bytes, dtype=np.uint8)}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(temporary, "wb") as handle:
            with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
                for name in sorted(members):
                    info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_TIME)
                    info.external_attr = 0o644 << 16
                    archive.writestr(info, _npy_bytes(members[name]))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return digest


def read_arrays(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """All arrays and the meta, verified against the stored digest; CorruptFileError if not."""
    try:
        with zipfile.ZipFile(path) as archive:
            arrays = {
                name.removesuffix(".npy"): _read_npy(archive.read(name))
                for name in archive.namelist()
            }
        meta = json.loads(arrays.pop(META).tobytes())
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, struct.error) as exc:
        raise CorruptFileError(f"{path} is unreadable ({type(exc).__name__}: {exc})") from exc
    stored = meta.get(DIGEST_KEY) if isinstance(meta, dict) else None
    if stored != content_digest(arrays):
        raise CorruptFileError(f"{path} fails its sha256 checksum: its content was altered")
    return arrays, meta


def read_meta(path: Path) -> dict[str, Any]:
    """The meta member alone (cheap; not verified)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(_read_npy(archive.read(f"{META}.npy")).tobytes())
    except (zipfile.BadZipFile, ValueError, OSError, KeyError) as exc:
        raise CorruptFileError(f"{path} is unreadable ({type(exc).__name__}: {exc})") from exc


def memmap_member(path: Path, name: str) -> np.ndarray:
    """One stored member mapped read-only from disk, without reading it into memory."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(f"{name}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        raise CorruptFileError(f"{path}: member {name} is compressed and cannot be mapped")
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        fields = _LOCAL_HEADER.unpack(handle.read(_LOCAL_HEADER.size))
        name_length, extra_length = fields[-2], fields[-1]
        handle.seek(info.header_offset + _LOCAL_HEADER.size + name_length + extra_length)
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise CorruptFileError(f"{path}: member {name} has unsupported .npy version {version}")
        offset = handle.tell()
    if int(np.prod(shape)) == 0:
        return np.empty(shape, dtype=dtype)
    order = "F" if fortran else "C"
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _read_npy(data: bytes) -> np.ndarray:
    return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
