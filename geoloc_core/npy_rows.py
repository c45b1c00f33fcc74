"""Rows of an .npy file read by row number with positional reads (pread), never mapped.

Pages of a memory map that a reader touches stay in the process's resident set (and a page
fault maps neighbouring pages too); a read goes through the kernel's page cache only, which the
kernel reclaims. So a reader over millions of rows (the feature cache's training epochs, the
refine copy's shortlists) holds one batch of rows, whatever the size of the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class RowFile:
    """An .npy array of fixed-size rows in C order; fix: what the errors tell the user to do."""

    path: Path
    offset: int  # where the data starts, after the .npy header
    shape: tuple[int, ...]
    dtype: np.dtype
    fix: str
    error: type[ValueError] = ValueError

    @classmethod
    def open(cls, path: Path, fix: str, error: type[ValueError] = ValueError) -> RowFile:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(handle)
            if fortran:
                raise error(f"{path} is Fortran-ordered: {fix}")
            return cls(Path(path), handle.tell(), tuple(shape), np.dtype(dtype), fix, error)

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    @property
    def data_bytes(self) -> int:
        """What the header promises after itself."""
        return self.shape[0] * self.row_bytes if self.shape else self.dtype.itemsize

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The rows (ascending row numbers), as one array; runs of consecutive rows are one read."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        if len(rows) == 0:
            return out
        flat = out.reshape(len(rows), -1).view(np.uint8).reshape(len(rows), -1)
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        starts = np.concatenate([[0], breaks])
        ends = np.concatenate([breaks, [len(rows)]])
        size = self.row_bytes
        with open(self.path, "rb", buffering=0) as handle:
            for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
                want = (b - a) * size
                data = os.pread(handle.fileno(), want, self.offset + int(rows[a]) * size)
                if len(data) != want:
                    raise self.error(f"{self.path} is shorter than its header says: {self.fix}")
                flat[a:b] = np.frombuffer(data, dtype=np.uint8).reshape(b - a, size)
        return out
