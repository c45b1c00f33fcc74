"""IVF-PQ's exact re-scoring stage, with its fp16 copy of the vectors on disk.

FAISS's IndexRefine keeps that copy in RAM (2·d bytes a vector: 22 GB for MP16's 4.65M at
G3's 2304-d). Here the copy is an .npy file of unit fp16 rows, written shard by shard while the
index fills, and memory-mapped (never read whole) when the index is loaded. A search
re-scores the k_factor·k shortlist of the PQ codes by reading only those rows from the file,
by positional reads (the kernel's page cache keeps hot rows; nothing of the file stays
resident in the process), so the process holds the PQ codes and one batch of rows whatever the
size of the reference set. Built without a file (tests, benchmarks), the copy is an array in
RAM; both give the same results.
"""

from __future__ import annotations

import hashlib
import io
import mmap
from pathlib import Path

import faiss
import numpy as np

from geoloc_core.npy_rows import RowFile

ROW_DTYPE = np.dtype("<f2")
FIX = "re-materialize retrieval_index"
# Shortlist rows re-scored at a time (x d x 2 bytes read, x 4 as float32): 32 MiB at 2304-d.
GATHER_ROWS = 8192
QUERY_BATCH = 128  # queries searched in the PQ codes at a time


class RefineVectors:
    """The fp16 unit rows, in RAM or memory-mapped from an .npy file."""

    def __init__(
        self, rows: np.ndarray, mapping: mmap.mmap | None = None, path: Path | None = None
    ) -> None:
        if rows.ndim != 2 or rows.dtype != ROW_DTYPE:
            raise ValueError(f"refine rows must be 2-D float16, got {rows.dtype} {rows.shape}")
        self.rows = rows
        self.path = path  # the file the rows are mapped from; None in RAM
        self._mapping = mapping
        self._file: RowFile | None = None  # the rows' reader, when they are in a file

    @classmethod
    def open(cls, path: Path) -> RefineVectors:
        """The rows of an .npy file written by RefineWriter, mapped read-only, never loaded."""
        rows_file = RowFile.open(path, FIX)
        if rows_file.dtype != ROW_DTYPE or len(rows_file.shape) != 2:
            raise ValueError(
                f"{path} is not a refine copy (float16 rows, C order): got {rows_file.dtype} "
                f"{rows_file.shape}; {FIX}"
            )
        expected = rows_file.offset + rows_file.data_bytes
        size = path.stat().st_size
        if size != expected:
            raise ValueError(
                f"{path} holds {size} bytes, its header promises {expected} (truncated?): {FIX}"
            )
        with open(path, "rb") as handle:
            mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        mapping.madvise(mmap.MADV_RANDOM)  # rows are read at random: no read-ahead
        rows = np.ndarray(rows_file.shape, ROW_DTYPE, buffer=mapping, offset=rows_file.offset)
        vectors = cls(rows, mapping, path)
        vectors._file = rows_file
        return vectors

    @property
    def mapped(self) -> bool:
        return self._mapping is not None

    def __len__(self) -> int:
        return len(self.rows)

    def gather(self, positions: np.ndarray) -> np.ndarray:
        """The rows at `positions` (sorted, unique), as float32; only those rows are read.

        From a file, by positional reads (pread) of exactly those rows rather than through the
        mapping: a page fault maps neighbouring pages too (measured: 8,000 scattered rows, 37 MB,
        raised the process's peak by 340 MB), a read goes through the page cache and leaves
        nothing resident in the process.
        """
        if self._file is None:
            return self.rows[positions].astype(np.float32)
        return self._file.read(positions).astype(np.float32)


class RefineWriter:
    """Writes unit rows as fp16, chunk by chunk, into an .npy file (plain writes: the pages are
    the kernel's cache, not the process's) or into an array when `path` is None. The SHA-256 is
    computed as the bytes go out, so a file of tens of GB is not read again to checksum it."""

    def __init__(self, path: Path | None, n: int, dim: int) -> None:
        self.path, self.n, self.written = path, n, 0
        self._sha = hashlib.sha256()
        self._rows = None if path is not None else np.empty((n, dim), ROW_DTYPE)
        self._handle = None
        if path is not None:
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                header, {"descr": ROW_DTYPE.str, "fortran_order": False, "shape": (n, dim)}
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(path, "wb")  # noqa: SIM115 - closed by finish()
            self._write(header.getvalue())

    def append(self, unit: np.ndarray) -> None:
        if self.written + len(unit) > self.n:
            raise ValueError(self._changed(self.written + len(unit)))
        rows = np.ascontiguousarray(unit, dtype=ROW_DTYPE)
        if self._rows is not None:
            self._rows[self.written : self.written + len(rows)] = rows
        else:
            self._write(rows.tobytes())
        self.written += len(rows)

    def finish(self) -> tuple[RefineVectors, str | None]:
        """The rows written and the file's SHA-256 (None in RAM)."""
        if self._handle is not None:
            self._handle.close()
        if self.written != self.n:
            raise ValueError(self._changed(self.written))
        if self._rows is not None:
            return RefineVectors(self._rows), None
        assert self.path is not None
        return RefineVectors.open(self.path), self._sha.hexdigest()

    def _write(self, data: bytes) -> None:
        assert self._handle is not None
        self._handle.write(data)
        self._sha.update(data)

    def _changed(self, rows: int) -> str:
        return (
            f"the reference shards gave {self.n} vectors while IVF-PQ sampled them and {rows} "
            "while it filled: a shard changed during the build; rebuild the index"
        )


class RefinedIndex:
    """An IVF-PQ index whose k_factor·k shortlist is re-scored exactly on the fp16 copy.

    It answers `search(x, k, params)` like a FAISS index (params: IndexRefineSearchParameters
    or the base's own), so the search loop treats it as FAISS's IndexRefine.
    """

    def __init__(
        self, base: faiss.Index, vectors: RefineVectors, k_factor: float, sha256: str | None
    ) -> None:
        if len(vectors) != base.ntotal:
            raise ValueError(
                f"the refine copy holds {len(vectors)} vectors but the index {base.ntotal}: "
                "re-materialize retrieval_index"
            )
        self.base_index, self.vectors, self.k_factor = base, vectors, k_factor
        self.sha256 = sha256  # of the .npy file the rows are mapped from; None in RAM
        # Kept alive with the wrapper (a GPU copy's CPU original, as FAISS's own wrappers do).
        self.referenced_objects: list[object] = []

    @property
    def ntotal(self) -> int:
        return int(self.base_index.ntotal)

    @property
    def d(self) -> int:
        return int(self.base_index.d)

    def search(
        self, x: np.ndarray, k: int, params: faiss.SearchParameters | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, positions) of the k best of each query's shortlist; -1 where the shortlist
        held fewer than k vectors (as FAISS)."""
        k_factor, base_params = self.k_factor, params
        if isinstance(params, faiss.IndexRefineSearchParameters):
            k_factor, base_params = params.k_factor, params.base_index_params
        shortlist = max(int(k * k_factor), k)
        scores = np.full((len(x), k), -np.inf, np.float32)
        positions = np.full((len(x), k), -1, np.int64)
        # Queries go to FAISS a batch at a time too: IVF fast-scan builds its lookup tables for
        # every query at once (nprobe x pq_m x 16 floats each: 400 MB for 1000 queries at
        # nprobe 24, PQ 256x4), results do not depend on the batching.
        per_batch = max(1, min(QUERY_BATCH, GATHER_ROWS // shortlist))
        for start in range(0, len(x), per_batch):
            rows = slice(start, start + per_batch)
            _, candidates = self.base_index.search(x[rows], shortlist, params=base_params)
            scores[rows], positions[rows] = self._rescored(x[rows], candidates, k)
        return scores, positions

    def _rescored(
        self, queries: np.ndarray, candidates: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        valid = candidates >= 0
        unique, inverse = np.unique(candidates[valid], return_inverse=True)
        exact = np.full(candidates.shape, -np.inf, np.float32)
        if unique.size:
            similarity = self.vectors.gather(unique) @ queries.T  # (unique rows, queries)
            exact[valid] = similarity[inverse, np.nonzero(valid)[0]]
        order = np.argsort(-exact, axis=1, kind="stable")[:, :k]
        best = np.take_along_axis(exact, order, axis=1)
        found = np.where(np.isfinite(best), np.take_along_axis(candidates, order, axis=1), -1)
        return best, found
