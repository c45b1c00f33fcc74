"""read_arrays (segmentation/container.py) checks the stored content sha256, not only the
zip's own CRC-32.

A flipped raw byte is already refused by zipfile's CRC check, so the sha256 matters for a file
altered consistently: one label map changed and the zip rewritten with correct CRCs and the old
meta, as a tool re-packing the archive would leave it. Only the content digest can tell."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from geoloc_core.segmentation.container import CorruptFileError, read_arrays, write_arrays


def repacked_with(path, name: str, array: np.ndarray) -> None:
    """Rewrite path's zip with member name replaced (valid zip, valid CRCs, old meta)."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info.filename) for info in archive.infolist()}
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
    members[f"{name}.npy"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)


def test_a_consistently_altered_shard_fails_its_sha256(tmp_path):
    path = tmp_path / "shard-00000-of-00001.npz"
    maps = np.arange(2 * 8 * 8, dtype=np.uint8).reshape(2, 8, 8)
    write_arrays(path, {"maps": maps, "ids": np.array([b"a", b"b"])}, {"fingerprint": "f"})
    read_arrays(path)  # sound as written
    altered = maps.copy()
    altered[1, 3, 3] ^= 0x01
    repacked_with(path, "maps", altered)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None  # the zip itself is valid: its CRCs match
    with pytest.raises(CorruptFileError, match="sha256"):
        read_arrays(path)
