"""Real coastlines for the prediction maps, offline: contours of the GLOBE 1 km land mask.

The mask ships inside the `global-land-mask` wheel (already a dependency of the demo world), a
21600 x 43200 boolean array deflated to 2.5 MB. Importing that package inflates all of it
(~930 MB, ~5 s); here the array is streamed row by row and only every `stride`-th row and
column is kept, so memory stays small and the map needs nothing from the network. The result
is cached per process: the first map pays about 2.5 s (2 cores), every further one nothing.
"""

from __future__ import annotations

import io
import itertools
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

import contourpy
import numpy as np

MASK_FILE = "globe_combined_mask_compressed.npz"
# 20 rows of 1/120 degree = 1/6 degree: finer than a pixel of a 1100 px wide world map.
DEFAULT_STRIDE = 20
MIN_VERTICES = 6  # drop specks: single-cell islands and lakes clutter a world map
_CHUNK = 1 << 14  # deflated bytes per step: inflate to a few MB at a time, never ~1 GB


@dataclass(frozen=True)
class Coastlines:
    """Land raster (True = land, row 0 = north) and coastline polylines as (n, 2) lon/lat."""

    land: np.ndarray
    lines: tuple[np.ndarray, ...]
    extent: tuple[float, float, float, float] = (-180.0, 180.0, -90.0, 90.0)


def mask_path() -> Path:
    """Where the installed global-land-mask package keeps its compressed mask."""
    spec = find_spec("global_land_mask")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "global-land-mask is not installed: it ships the land mask the maps are drawn from"
        )
    path = Path(spec.origin).parent / MASK_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the global-land-mask package")
    return path


def _deflated_member(archive: Path, member: str) -> bytes:
    """Raw deflate bytes of one zip member (read directly: zipfile's CRC pass costs ~0.5 s)."""
    with zipfile.ZipFile(archive) as z:
        info = z.getinfo(member)
    if info.compress_type != zipfile.ZIP_DEFLATED:
        raise ValueError(f"{archive}:{member} is not deflated (type {info.compress_type})")
    with archive.open("rb") as f:
        f.seek(info.header_offset)
        name_len, extra_len = struct.unpack("<HH", f.read(30)[26:30])
        f.seek(info.header_offset + 30 + name_len + extra_len)
        return f.read(info.compress_size)


def _npy_header(buffer: bytes) -> tuple[int, tuple[int, int]]:
    """(header length, shape) of a C-ordered 2-D bool .npy held at the start of `buffer`."""
    stream = io.BytesIO(buffer)
    version = np.lib.format.read_magic(stream)
    read = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    shape, fortran_order, dtype = read(stream)
    if dtype != np.bool_ or fortran_order or len(shape) != 2:
        raise ValueError(f"unexpected land mask layout: {shape} {dtype} fortran={fortran_order}")
    return stream.tell(), (int(shape[0]), int(shape[1]))


def _inflated_pieces(compressed: bytes) -> Iterator[bytes]:
    """The inflated stream in pieces of a few MB (small input chunks bound the output)."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    for position in range(0, len(compressed), _CHUNK):
        piece = inflater.decompress(compressed[position : position + _CHUNK])
        if piece:
            yield piece
    rest = inflater.flush()
    if rest:
        yield rest


def read_land(stride: int = DEFAULT_STRIDE, path: Path | None = None) -> np.ndarray:
    """Every `stride`-th row and column of the land mask (True = land), row 0 at 90 N.

    Inflates the stream once, copying only the kept rows: the full array is never held.
    """
    pieces = _inflated_pieces(_deflated_member(path or mask_path(), "mask.npy"))
    first = next(pieces)
    while len(first) < 4096:  # the .npy header is at most a few hundred bytes
        first += next(pieces)
    header_length, (n_rows, n_cols) = _npy_header(first)
    kept = np.arange(stride // 2, n_rows, stride)
    rows = np.empty((len(kept), n_cols), np.uint8)
    flat = rows.reshape(-1)
    starts = kept * n_cols  # array-data byte offset of each kept row
    offset = 0  # array-data byte offset of the current piece
    for piece in itertools.chain([first[header_length:]], pieces):
        end = offset + len(piece)
        view = memoryview(piece)
        lo_row = int(np.searchsorted(starts + n_cols, offset, side="right"))
        hi_row = int(np.searchsorted(starts, end, side="left"))
        for i in range(lo_row, hi_row):
            lo, hi = max(int(starts[i]), offset), min(int(starts[i]) + n_cols, end)
            target = i * n_cols + lo - int(starts[i])
            chunk = np.frombuffer(view[lo - offset : hi - offset], np.uint8)
            flat[target : target + hi - lo] = chunk
        offset = end
    if offset < n_rows * n_cols:
        raise ValueError(f"the land mask ended after {offset} of {n_rows * n_cols} bytes")
    return rows[:, stride // 2 :: stride] == 0  # the package stores True for ocean


def trace_coastlines(land: np.ndarray, min_vertices: int = MIN_VERTICES) -> tuple[np.ndarray, ...]:
    """Polylines (lon, lat) of the land/sea boundary of a north-up global raster."""
    n_rows, n_cols = land.shape
    lat = 90.0 - (np.arange(n_rows) + 0.5) * 180.0 / n_rows
    lon = -180.0 + (np.arange(n_cols) + 0.5) * 360.0 / n_cols
    generator = contourpy.contour_generator(lon, lat, land.astype(np.float32), line_type="Separate")
    return tuple(line for line in generator.lines(0.5) if len(line) >= min_vertices)


@lru_cache(maxsize=2)
def coastlines(stride: int = DEFAULT_STRIDE) -> Coastlines:
    """The land raster and its coastlines, derived once per process."""
    land = read_land(stride)
    return Coastlines(land=land, lines=trace_coastlines(land))
