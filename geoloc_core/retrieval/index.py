"""FAISS inner-product indexes over unit vectors (cosine similarity): flat, IVF-PQ and HNSW.

`build_index_from_shards` builds any of the three from reference shards that are loaded one at
a time, so a reference set like MP16 never sits in one process as float32: a shard is
normalised and added in chunks of at most ADD_CHUNK_BYTES as float32, and IVF-PQ is trained on
a seeded sample (`index.train_size` vectors) drawn across all shards first. Positions in the
index follow the concatenation order of the shards; the caller keeps the ids in the same order.

IVF-PQ's refine stage (`index.refine`) keeps its fp16 copy of the vectors in a file beside the
index, written shard by shard and memory-mapped when searched (refine.py), so building and
searching hold the PQ codes plus one shard, not 2·d bytes for every reference vector.

`search` never hands on FAISS's -1 "no result" positions: HNSW searches with a beam of at least
k, and a query that still comes back short (an IVF query whose visited cells hold fewer than k
vectors) is searched again with twice the cells (or beam), up to every cell, which is exact.

The index is built and saved on CPU. `index_for_search` gives a GPU copy (flat, IVF-PQ of the
standard layout) when `index.device` resolves to cuda; HNSW and fast-scan IVF-PQ stay on CPU,
FAISS has neither on the GPU.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from geoloc_core.file_hash import check_sha256, file_sha256
from geoloc_core.kill_point import kill_point
from geoloc_core.retrieval.index_settings import MIN_POINTS_PER_CENTROID, IndexSettings
from geoloc_core.retrieval.refine import RefinedIndex, RefineVectors, RefineWriter

# Rows normalised to float32 at a time while adding a shard: at most 65,536 rows and 16 MiB
# (2304-d: 1,820 rows), so the float32 copies FAISS makes while adding stay small next to a shard.
ADD_CHUNK_ROWS = 65_536
ADD_CHUNK_BYTES = 16 << 20
# FAISS multiplies queries by blocks of 1024 database rows by default; 4096-row blocks ran the
# exact search ~1.6x faster on 768-d (benchmarks/index_search.py), for 16 MB of scratch per
# 1000 queries. Process-wide FAISS state: only the untouched default is raised.
FAISS_DEFAULT_DATABASE_BLOCK = 1024
DATABASE_BLOCK = 4096
if faiss.cvar.distance_compute_blas_database_bs == FAISS_DEFAULT_DATABASE_BLOCK:
    faiss.cvar.distance_compute_blas_database_bs = DATABASE_BLOCK

ShardLoader = Callable[[], np.ndarray]
Log = Callable[[str], None]


def build_flat_index(embeddings: np.ndarray) -> faiss.Index:
    vectors = _as_unit_float32(embeddings)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def build_index_from_shards(
    shards: Sequence[ShardLoader],
    settings: IndexSettings,
    log: Log | None = None,
    refine_file: Path | None = None,
) -> faiss.Index | RefinedIndex:
    """The index of `settings.type` over all shards, each loaded once (IVF-PQ: twice).

    IVF-PQ with `refine` writes its fp16 copy to `refine_file` while it fills (give
    `refine_building_file(index path)` to save it with save_index), or keeps it in RAM
    without one.
    """
    say = log or (lambda _message: None)
    index: faiss.Index | None = None
    refine: RefineWriter | None = None
    if settings.type == "ivfpq":
        sample, total = _training_sample(shards, settings)
        index = _empty_index(sample.shape[1], settings)
        say(
            f"index: training IVF-PQ ({settings.ivf_nlist} cells, PQ {settings.pq_m}x"
            f"{settings.pq_nbits} {settings.pq_layout}) on {len(sample)} sampled vectors"
        )
        index.train(sample)
        say("index: trained")
        if settings.refine:
            refine = RefineWriter(refine_file, total, sample.shape[1])
        del sample
    for number, vectors in _shard_arrays(shards):
        if index is None:
            index = _empty_index(vectors.shape[1], settings)
        step = max(1, min(ADD_CHUNK_ROWS, ADD_CHUNK_BYTES // (4 * vectors.shape[1])))
        for start in range(0, len(vectors), step):
            unit = _as_unit_float32(vectors[start : start + step])
            index.add(unit)
            if refine is not None:
                refine.append(unit)
        say(f"index: shard {number}: added {len(vectors)} vectors ({index.ntotal} in all)")
        del vectors  # not held while the next shard loads
    if index is None or index.ntotal == 0:
        raise ValueError(f"the {len(shards)} reference shards hold no vectors: nothing to index")
    if refine is not None:
        rows, sha256 = refine.finish()
        return RefinedIndex(index, rows, settings.refine_k_factor, sha256)
    return index


def search(
    index: faiss.Index | RefinedIndex,
    queries: np.ndarray,
    k: int,
    settings: IndexSettings | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, positions), both (n_queries, k); k is capped by the index size, never padded.

    `settings` sets nprobe, the HNSW beam and the refine shortlist for this call; without it
    the values stored in the index apply. For the least similar references pass `-queries`.
    """
    if index.ntotal == 0:
        raise ValueError("the retrieval index is empty; build it from a non-empty reference set")
    k = min(k, index.ntotal)
    unit = _as_unit_float32(queries)
    knobs = _Knobs.of(index, settings, k)
    scores, positions = index.search(unit, k, params=knobs.params())
    short = np.flatnonzero((positions < 0).any(axis=1))
    while short.size:
        knobs = knobs.widened(index)
        more_scores, more_positions = index.search(unit[short], k, params=knobs.params())
        scores[short], positions[short] = more_scores, more_positions
        short = short[(more_positions < 0).any(axis=1)]
    return scores, positions


def index_device(settings: IndexSettings) -> str:
    """'cpu' or 'cuda' for `index.device`; auto means cuda only when faiss-gpu sees a GPU."""
    if settings.device == "cpu":
        return "cpu"
    if _faiss_gpus() > 0:
        return "cuda"
    if settings.device == "auto":
        return "cpu"
    reason = (
        "this faiss has no GPU support (install faiss-gpu: pip install 'geoloc[gpu]')"
        if not hasattr(faiss, "StandardGpuResources")
        else "faiss-gpu sees no GPU"
    )
    raise ValueError(f"index.device='cuda' but {reason}; set index.device to auto or cpu")


def index_for_search(
    index: faiss.Index | RefinedIndex, settings: IndexSettings
) -> faiss.Index | RefinedIndex:
    """The index to search on the device `settings` resolve to: a GPU copy or the index itself.

    Flat and IVF-PQ move with faiss.index_cpu_to_gpu (IVF-PQ with fp16 lookup tables: float32
    ones for pq_m = 64 overflow GPU shared memory); an IVF-PQ refine stage stays on CPU, where
    IndexRefine can re-score from it. HNSW and fast-scan IVF-PQ stay on CPU: FAISS has neither
    on the GPU (settings refuse pq_layout fastscan with device cuda; auto keeps it here). Save
    the CPU index, never the copy. GPU FAISS limits k (and k·refine_k_factor, nprobe) to 2048.
    """
    if index_device(settings) == "cpu" or _is_hnsw(index) or _is_fastscan(index):
        return index
    return _moved(index, _to_gpu)


def checksum_file(path: Path) -> Path:
    """The index's SHA-256, written beside it: FAISS reads a damaged file without complaint.

    Line 1 is the index file's digest; an IVF-PQ with a refine copy adds the line
    `refine <digest of the copy> <k_factor>`. The sidecar is replaced last, so it names the
    index and copy of one build, or the old pair: never a mix.
    """
    return path.with_name(path.name + ".sha256")


def refine_file_of(path: Path) -> Path:
    """Where the index saved at `path` keeps its fp16 refine copy (IVF-PQ with refine)."""
    return path.with_name(path.stem + ".refine.npy")


def refine_building_file(path: Path) -> Path:
    """Where build_index_from_shards writes the copy for save_index(…, path) to move in place."""
    return path.with_name(path.stem + ".refine.npy.tmp")


def save_index(index: faiss.Index | RefinedIndex, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    refined = index if isinstance(index, RefinedIndex) else None
    faiss.write_index(index.base_index if refined else index, str(tmp))
    lines = [file_sha256(tmp)]
    refine_tmp = refine_building_file(path)
    if refined is not None:
        refine_sha = _refine_copy_at(refined, refine_tmp)
        lines.append(f"refine {refine_sha} {refined.k_factor:g}")
    sidecar = checksum_file(path)
    sidecar_tmp = sidecar.with_name(sidecar.name + ".tmp")
    sidecar_tmp.write_text("\n".join(lines) + "\n")
    kill_point("index-written")  # complete, not yet in place
    tmp.replace(path)
    if refined is not None:
        refine_tmp.replace(refine_file_of(path))  # the open mapping follows the file
        refined.vectors.path = refine_file_of(path)
    sidecar_tmp.replace(sidecar)
    if refined is None:
        refine_file_of(path).unlink(missing_ok=True)  # an earlier build's, no longer named


def load_index(path: Path) -> faiss.Index | RefinedIndex:
    """The saved index, refused unless its bytes (and its refine copy's) are those save_index
    wrote; the refine copy is memory-mapped, never read whole."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: materialize the retrieval_index asset first")
    sidecar = checksum_file(path)
    lines = sidecar.read_text().split("\n") if sidecar.is_file() else []
    fix = "re-materialize retrieval_index"
    check_sha256(path, lines[0].strip() if lines else None, fix)
    index = faiss.read_index(str(path))
    refine = [line.split() for line in lines[1:] if line.startswith("refine ")]
    if not refine:
        return index
    _, refine_sha, k_factor = refine[0]
    copy = refine_file_of(path)
    if not copy.is_file():
        raise FileNotFoundError(f"{copy}, the index's refine copy, is missing: {fix}")
    check_sha256(copy, refine_sha, fix)
    return RefinedIndex(index, RefineVectors.open(copy), float(k_factor), refine_sha)


def _refine_copy_at(index: RefinedIndex, target: Path) -> str:
    """The SHA-256 of the index's refine copy, written to `target` unless already there."""
    vectors = index.vectors
    if index.sha256 is not None and vectors.mapped and _same_file(vectors.path, target):
        return index.sha256
    writer = RefineWriter(target, len(vectors), index.d)
    for start in range(0, len(vectors), ADD_CHUNK_ROWS):
        writer.append(vectors.rows[start : start + ADD_CHUNK_ROWS])
    return writer.finish()[1] or ""


def _same_file(a: Path | None, b: Path) -> bool:
    return a is not None and a.exists() and b.exists() and os.path.samefile(a, b)


def index_memory_bytes_per_vector(settings: IndexSettings, dim: int) -> float:
    """Estimated bytes of RAM per reference vector (fixed costs like IVF centroids left out).

    flat: float32 vector; hnsw: float32 vector + 2·M bottom-layer links + the expected upper
    layers (M/(M-1) links) + level and offset bookkeeping; ivfpq: PQ code + 64-bit id (the fp16
    refine copy, 2·d bytes, is on disk: index_disk_bytes_per_vector).
    """
    if settings.type == "flat":
        return 4.0 * dim
    if settings.type == "hnsw":
        m = settings.hnsw_m
        return 4.0 * dim + 4.0 * 2 * m + 4.0 * m / (m - 1) + 4 + 8
    code = (settings.pq_m * settings.pq_nbits + 7) // 8
    return float(code + 8)


def index_disk_bytes_per_vector(settings: IndexSettings, dim: int) -> float:
    """Estimated bytes on disk per reference vector: the index file plus the refine copy."""
    refine = 2 * dim if settings.type == "ivfpq" and settings.refine else 0
    return index_memory_bytes_per_vector(settings, dim) + refine


def _empty_index(dim: int, settings: IndexSettings) -> faiss.Index:
    metric = faiss.METRIC_INNER_PRODUCT
    if settings.type == "flat":
        return faiss.IndexFlatIP(dim)
    if settings.type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, settings.hnsw_m, metric)
        index.hnsw.efConstruction = settings.hnsw_ef_construction
        index.hnsw.efSearch = settings.hnsw_ef_search
        return index
    _check_pq_m(dim, settings)
    layout = "fs" if settings.pq_layout == "fastscan" else ""
    pq = f"PQ{settings.pq_m}x{settings.pq_nbits}{layout}"
    index = faiss.index_factory(dim, f"IVF{settings.ivf_nlist},{pq}", metric)
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    ivf.cp.seed = settings.seed
    ivf.pq.cp.seed = settings.seed
    if hasattr(ivf, "do_polysemous_training"):
        # The factory turns on polysemous training (slow; for Hamming pre-filters, unused here).
        ivf.do_polysemous_training = False
    ivf.nprobe = settings.nprobe
    return index


def _check_pq_m(dim: int, settings: IndexSettings) -> None:
    if dim % settings.pq_m:
        divisors = [m for m in (8, 16, 24, 32, 48, 64, 96) if dim % m == 0]
        raise ValueError(
            f"index.pq_m={settings.pq_m} must divide the vector dimension {dim}"
            + (f" (e.g. one of {divisors})" if divisors else "")
        )


def _training_sample(
    shards: Sequence[ShardLoader], settings: IndexSettings
) -> tuple[np.ndarray, int]:
    """A uniform sample without replacement of train_size vectors over all shards, seeded,
    and the number of vectors in all.

    Every vector gets a random key; the sample is the train_size smallest keys, kept while the
    shards stream by. Only one shard and the sample are in memory, and the sample is held in
    fixed slots as the shards store it (fp16: half of float32): a shard's chosen rows take the
    slots of rows it pushed out, and the rows are put back in reference order and normalised
    to float32 once, after the last shard.
    """
    rng = np.random.default_rng(settings.seed)
    size = settings.train_size
    keys = np.full(size, np.inf)
    order = np.full(size, -1, np.int64)  # each slot's position in the reference set
    held = np.zeros(size, bool)
    rows: np.ndarray | None = None
    total = 0
    for _, vectors in _shard_arrays(shards):
        kind = np.float16 if vectors.dtype == np.float16 else np.float32
        if rows is None:
            _check_pq_m(vectors.shape[1], settings)
            rows = np.empty((size, vectors.shape[1]), kind)
        elif np.dtype(kind).itemsize > rows.dtype.itemsize:
            rows = rows.astype(kind)
        shard_keys = rng.random(len(vectors))
        both = np.concatenate([keys[held], shard_keys])
        threshold = np.partition(both, size - 1)[size - 1] if len(both) > size else np.inf
        taken = np.flatnonzero(shard_keys <= threshold)
        held &= keys <= threshold
        slots = np.flatnonzero(~held)[: len(taken)]
        rows[slots] = vectors[taken]
        keys[slots], order[slots], held[slots] = shard_keys[taken], total + taken, True
        total += len(vectors)
        del vectors  # before the next shard loads, and after the last one
    if rows is None:
        raise ValueError(f"the {len(shards)} reference shards hold no vectors: nothing to index")
    slots = np.flatnonzero(held)
    if len(slots) < settings.min_train_size:
        raise ValueError(_too_few_to_train(settings, total))
    picked = rows[slots[np.argsort(order[slots])]]
    del rows
    return _as_unit_float32(picked, in_place=True), total


def _too_few_to_train(settings: IndexSettings, total: int) -> str:
    per_centroid = MIN_POINTS_PER_CENTROID
    fits_nlist = total // per_centroid
    fits_nbits = int(np.log2(total / per_centroid)) if total >= 2 * per_centroid else 0
    fixes = []
    if settings.ivf_nlist > fits_nlist >= 1:
        fixes.append(f"index.ivf_nlist <= {fits_nlist}")
    if settings.pq_nbits > fits_nbits >= 1:
        fixes.append(f"index.pq_nbits <= {fits_nbits}")
    advice = f"set {' and '.join(fixes)}, or use" if fixes else "use"
    return (
        f"IVF-PQ needs >= {settings.min_train_size} training vectors ({per_centroid} x max("
        f"index.ivf_nlist={settings.ivf_nlist}, 2**index.pq_nbits={2**settings.pq_nbits})) but "
        f"the reference set has only {total}: {advice} index.type flat"
    )


def _shard_arrays(shards: Sequence[ShardLoader]) -> Iterator[tuple[int, np.ndarray]]:
    """(shard number, its vectors) for each non-empty shard, one loaded at a time, checked."""
    dim: int | None = None
    first = 0
    for number, load in enumerate(shards):
        vectors = np.asarray(load())
        if vectors.ndim != 2:
            raise ValueError(f"shard {number}: vectors must be 2-D (n, d), got {vectors.shape}")
        if not np.issubdtype(vectors.dtype, np.floating):
            raise ValueError(f"shard {number}: vectors are {vectors.dtype}, expected floats")
        if len(vectors) == 0:
            continue
        if dim is None:
            dim, first = vectors.shape[1], number
        elif vectors.shape[1] != dim:
            raise ValueError(
                f"shard {number} has vectors of dimension {vectors.shape[1]} but shard {first} "
                f"has {dim}: all shards must hold the same embedding"
            )
        yield number, vectors
        del vectors  # the next shard loads without this one held


@dataclass(frozen=True)
class _Knobs:
    """The search-time settings that apply to one index; None where the index has no such knob."""

    nprobe: int | None
    nlist: int | None
    ef_search: int | None
    ntotal: int
    k_factor: float | None

    @classmethod
    def of(cls, index: faiss.Index, settings: IndexSettings | None, k: int) -> _Knobs:
        base = _base(index)
        refine = index if isinstance(index, (faiss.IndexRefine, RefinedIndex)) else None
        nprobe = nlist = ef_search = None
        if hasattr(base, "nprobe") and hasattr(base, "nlist"):
            nlist = int(base.nlist)
            nprobe = min(settings.nprobe if settings else int(base.nprobe), nlist)
        if isinstance(base, faiss.IndexHNSW):
            ef_search = max(settings.hnsw_ef_search if settings else base.hnsw.efSearch, k)
        k_factor = None
        if refine is not None:
            k_factor = float(settings.refine_k_factor if settings else refine.k_factor)
        return cls(nprobe, nlist, ef_search, int(index.ntotal), k_factor)

    def params(self) -> faiss.SearchParameters | None:
        base: faiss.SearchParameters | None = None
        if self.nprobe is not None:
            base = faiss.SearchParametersIVF(nprobe=self.nprobe)
        elif self.ef_search is not None:
            base = faiss.SearchParametersHNSW(efSearch=self.ef_search)
        if self.k_factor is None:
            return base
        return faiss.IndexRefineSearchParameters(k_factor=self.k_factor, base_index_params=base)

    def widened(self, index: faiss.Index) -> _Knobs:
        """Twice the cells or beam, for queries that came back with fewer than k results."""
        if self.nprobe is not None and self.nlist is not None and self.nprobe < self.nlist:
            return _replace(self, nprobe=min(2 * self.nprobe, self.nlist))
        if self.ef_search is not None and self.ef_search < self.ntotal:
            return _replace(self, ef_search=min(2 * self.ef_search, self.ntotal))
        raise RuntimeError(
            f"FAISS found fewer than k results even exhaustively in a {type(index).__name__} "
            f"of {index.ntotal} vectors"
        )


def _replace(knobs: _Knobs, **changes: int) -> _Knobs:
    return _Knobs(**{**knobs.__dict__, **changes})


def _base(index: faiss.Index | RefinedIndex) -> faiss.Index:
    if isinstance(index, (faiss.IndexRefine, RefinedIndex)):
        return faiss.downcast_index(index.base_index)
    return index


def _is_hnsw(index: faiss.Index) -> bool:
    return isinstance(_base(index), faiss.IndexHNSW)


def _is_fastscan(index: faiss.Index) -> bool:
    return isinstance(_base(index), faiss.IndexIVFFastScan)


def _moved(
    index: faiss.Index | RefinedIndex, move: Callable[[faiss.Index], faiss.Index]
) -> faiss.Index | RefinedIndex:
    """`move` applied to the index, or to its IVF-PQ base only when it has a refine stage."""
    if isinstance(index, RefinedIndex):
        moved_refined = RefinedIndex(
            move(index.base_index), index.vectors, index.k_factor, index.sha256
        )
        moved_refined.referenced_objects.append(index)
        return moved_refined
    if not isinstance(index, faiss.IndexRefine):
        return move(index)
    moved = faiss.IndexRefine(move(_base(index)), index.refine_index)
    moved.k_factor = index.k_factor
    # The refine stage still belongs to the CPU index: keep that alive as long as the copy.
    moved.referenced_objects = [*getattr(moved, "referenced_objects", []), index]
    return moved


def _faiss_gpus() -> int:
    if not hasattr(faiss, "StandardGpuResources"):
        return 0
    return int(faiss.get_num_gpus())


@functools.cache
def _gpu_resources() -> faiss.StandardGpuResources:
    """One set of GPU resources (streams, scratch memory) per process, as FAISS recommends."""
    return faiss.StandardGpuResources()


def _to_gpu(index: faiss.Index) -> faiss.Index:
    options = faiss.GpuClonerOptions()
    # For IVF-PQ this means fp16 lookup tables; flat keeps float32 vectors (exact scores).
    options.useFloat16 = isinstance(index, faiss.IndexIVFPQ)
    return faiss.index_cpu_to_gpu(_gpu_resources(), 0, index, options)


def _as_unit_float32(x: np.ndarray, in_place: bool = False) -> np.ndarray:
    """x as unit float32 rows, refused when a row is zero or not finite; `in_place`: x is the
    caller's to overwrite (when already float32), so no second copy is made."""
    vectors = np.ascontiguousarray(x, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n, d), got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(f"{int((norms == 0).sum())} embeddings are all zeros; cannot normalise")
    if not np.all(np.isfinite(norms)):
        raise ValueError(f"{int((~np.isfinite(norms)).sum())} embeddings hold NaN or inf values")
    if in_place or not np.may_share_memory(vectors, x):
        vectors /= norms  # a copy of its own (or the caller's to overwrite): divided in place
        return vectors
    return vectors / norms
