"""FAISS inner-product indexes over unit vectors (cosine similarity): flat, IVF-PQ and HNSW.

`build_index_from_shards` builds any of the three from reference shards that are loaded one at
a time, so a reference set like MP16 never sits in one process as float32: a shard is
normalised and added in chunks of ADD_CHUNK_ROWS rows, and IVF-PQ is trained on a seeded sample
(`index.train_size` vectors) drawn across all shards first. Positions in the index follow the
concatenation order of the shards; the caller keeps the ids in the same order.

`search` never hands on FAISS's -1 "no result" positions: HNSW searches with a beam of at least
k, and a query that still comes back short (an IVF query whose visited cells hold fewer than k
vectors) is searched again with twice the cells (or beam), up to every cell, which is exact.

The index is built and saved on CPU. `index_for_search` gives a GPU copy (flat, IVF-PQ of the
standard layout) when `index.device` resolves to cuda; HNSW and fast-scan IVF-PQ stay on CPU,
FAISS has neither on the GPU.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from geoloc_core.file_hash import check_sha256, file_sha256
from geoloc_core.kill_point import kill_point
from geoloc_core.retrieval.index_settings import MIN_POINTS_PER_CENTROID, IndexSettings

# Rows normalised to float32 at a time while adding a shard (768-d: 200 MB).
ADD_CHUNK_ROWS = 65_536
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
    shards: Sequence[ShardLoader], settings: IndexSettings, log: Log | None = None
) -> faiss.Index:
    """The index of `settings.type` over all shards, each loaded once (IVF-PQ: twice)."""
    say = log or (lambda _message: None)
    index: faiss.Index | None = None
    if settings.type == "ivfpq":
        sample = _training_sample(shards, settings)
        index = _empty_index(sample.shape[1], settings)
        say(
            f"index: training IVF-PQ ({settings.ivf_nlist} cells, PQ {settings.pq_m}x"
            f"{settings.pq_nbits} {settings.pq_layout}) on {len(sample)} sampled vectors"
        )
        index.train(sample)
        del sample
    for number, vectors in _shard_arrays(shards):
        if index is None:
            index = _empty_index(vectors.shape[1], settings)
        for start in range(0, len(vectors), ADD_CHUNK_ROWS):
            index.add(_as_unit_float32(vectors[start : start + ADD_CHUNK_ROWS]))
        say(f"index: shard {number}: added {len(vectors)} vectors ({index.ntotal} in all)")
    if index is None or index.ntotal == 0:
        raise ValueError(f"the {len(shards)} reference shards hold no vectors: nothing to index")
    return index


def search(
    index: faiss.Index, queries: np.ndarray, k: int, settings: IndexSettings | None = None
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


def index_for_search(index: faiss.Index, settings: IndexSettings) -> faiss.Index:
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
    """The index's SHA-256, written beside it: FAISS reads a damaged file without complaint."""
    return path.with_name(path.name + ".sha256")


def save_index(index: faiss.Index, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    faiss.write_index(index, str(tmp))
    digest = file_sha256(tmp)
    sidecar = checksum_file(path)
    sidecar_tmp = sidecar.with_name(sidecar.name + ".tmp")
    sidecar_tmp.write_text(digest + "\n")
    kill_point("index-written")  # complete, not yet in place
    tmp.replace(path)
    sidecar_tmp.replace(sidecar)


def load_index(path: Path) -> faiss.Index:
    """The saved index, refused unless its bytes are those save_index wrote."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: materialize the retrieval_index asset first")
    sidecar = checksum_file(path)
    expected = sidecar.read_text().strip() if sidecar.is_file() else None
    check_sha256(path, expected, "re-materialize retrieval_index")
    return faiss.read_index(str(path))


def index_memory_bytes_per_vector(settings: IndexSettings, dim: int) -> float:
    """Estimated bytes per reference vector (fixed costs like IVF centroids left out).

    flat: float32 vector; hnsw: float32 vector + 2·M bottom-layer links + the expected upper
    layers (M/(M-1) links) + level and offset bookkeeping; ivfpq: PQ code + 64-bit id, plus the
    fp16 refine copy when `refine` is on.
    """
    if settings.type == "flat":
        return 4.0 * dim
    if settings.type == "hnsw":
        m = settings.hnsw_m
        return 4.0 * dim + 4.0 * 2 * m + 4.0 * m / (m - 1) + 4 + 8
    code = (settings.pq_m * settings.pq_nbits + 7) // 8
    return float(code + 8 + (2 * dim if settings.refine else 0))


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
    refine = ",Refine(SQfp16)" if settings.refine else ""
    layout = "fs" if settings.pq_layout == "fastscan" else ""
    pq = f"PQ{settings.pq_m}x{settings.pq_nbits}{layout}"
    index = faiss.index_factory(dim, f"IVF{settings.ivf_nlist},{pq}{refine}", metric)
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    ivf.cp.seed = settings.seed
    ivf.pq.cp.seed = settings.seed
    if hasattr(ivf, "do_polysemous_training"):
        # The factory turns on polysemous training (slow; for Hamming pre-filters, unused here).
        ivf.do_polysemous_training = False
    ivf.nprobe = settings.nprobe
    if settings.refine:
        index.k_factor = settings.refine_k_factor
    return index


def _check_pq_m(dim: int, settings: IndexSettings) -> None:
    if dim % settings.pq_m:
        divisors = [m for m in (8, 16, 24, 32, 48, 64, 96) if dim % m == 0]
        raise ValueError(
            f"index.pq_m={settings.pq_m} must divide the vector dimension {dim}"
            + (f" (e.g. one of {divisors})" if divisors else "")
        )


def _training_sample(shards: Sequence[ShardLoader], settings: IndexSettings) -> np.ndarray:
    """A uniform sample without replacement of train_size vectors over all shards, seeded.

    Every vector gets a random key; the sample is the train_size smallest keys, kept while the
    shards stream by, so only one shard and the sample are in memory.
    """
    rng = np.random.default_rng(settings.seed)
    size = settings.train_size
    keys = np.empty(0)
    sample: np.ndarray | None = None
    total = 0
    for _, vectors in _shard_arrays(shards):
        if sample is None:
            _check_pq_m(vectors.shape[1], settings)
            sample = np.empty((0, vectors.shape[1]), np.float32)
        total += len(vectors)
        shard_keys = rng.random(len(vectors))
        both = np.concatenate([keys, shard_keys])
        threshold = np.partition(both, size - 1)[size - 1] if len(both) > size else np.inf
        taken = np.flatnonzero(shard_keys <= threshold)
        kept = keys <= threshold
        keys = np.concatenate([keys[kept], shard_keys[taken]])
        sample = np.concatenate([sample[kept], _as_unit_float32(vectors[taken])])
    if sample is None:
        raise ValueError(f"the {len(shards)} reference shards hold no vectors: nothing to index")
    if len(sample) < settings.min_train_size:
        raise ValueError(_too_few_to_train(settings, total))
    return sample


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
        refine = index if isinstance(index, faiss.IndexRefine) else None
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


def _base(index: faiss.Index) -> faiss.Index:
    if isinstance(index, faiss.IndexRefine):
        return faiss.downcast_index(index.base_index)
    return index


def _is_hnsw(index: faiss.Index) -> bool:
    return isinstance(_base(index), faiss.IndexHNSW)


def _is_fastscan(index: faiss.Index) -> bool:
    return isinstance(_base(index), faiss.IndexIVFFastScan)


def _moved(index: faiss.Index, move: Callable[[faiss.Index], faiss.Index]) -> faiss.Index:
    """`move` applied to the index, or to its IVF-PQ base only when it has a refine stage."""
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


def _as_unit_float32(x: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(x, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n, d), got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(f"{int((norms == 0).sum())} embeddings are all zeros; cannot normalise")
    if not np.all(np.isfinite(norms)):
        raise ValueError(f"{int((~np.isfinite(norms)).sum())} embeddings hold NaN or inf values")
    return vectors / norms
