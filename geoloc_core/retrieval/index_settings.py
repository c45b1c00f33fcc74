"""The `index` params section, validated: which FAISS index to build and how to search it.

Every key is required when the settings come from params.yaml (nothing is silently defaulted);
the dataclass defaults serve code and tests that build settings directly. Every error is one
line that names the key and what it accepts.

Memory per reference vector (d = dimension; see `index.index_memory_bytes_per_vector`):
- flat: 4·d bytes (float32 vectors; exact search). Fine for the demo; MP16 at d=768 would need
  14 GB as float32 in one process, which the design rules out: use ivfpq there.
- hnsw: 4·d + 8·hnsw_m + ~16 bytes (float32 vectors plus the graph); fast on CPU, never on GPU,
  and as memory-hungry as flat.
- ivfpq: pq_m·pq_nbits/8 + 8 bytes (PQ code + 64-bit id in its inverted list), plus 2·d bytes
  when `refine` is on. `pq_layout: fastscan` (the default) stores 4-bit codes in FAISS's SIMD
  fast-scan layout: with pq_m = 128 the code is as long as PQ 64x8's (64 bytes), and on
  benchmarks/index_search.py (200k x 768, nprobe 32, 8·k shortlist) it searched 1.8x faster
  (18x the flat index's queries/s against 10x), built 2.4x faster (13 s against 32 s; 16
  centroids per sub-quantizer to train instead of 256) at recall@10 0.952 against 0.963.
  FAISS has fast-scan on CPU only: on a GPU, `pq_layout: standard` (e.g. pq_m 64, pq_nbits 8)
  is what moves there.
  The refine stage keeps an fp16 copy of every vector (a FAISS scalar quantizer, half of
  float32) and re-ranks the `refine_k_factor`·k PQ shortlist with exact inner products on it:
  PQ alone on 768-d embeddings rarely reaches recall@10 0.9, the re-rank does. At d=768 with
  64-byte codes: 72 bytes without refine, 1,608 bytes with it (52 % of float32). The shortlist
  decides the recall (benchmarks/index_search.py reports PQ ranking alone, 4·k and 8·k).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from geoloc_core.section_fields import strict_values

INDEX_TYPES = ("flat", "ivfpq", "hnsw")
METRICS = ("inner_product",)
DEVICES = ("auto", "cpu", "cuda")
PQ_LAYOUTS = ("fastscan", "standard")
FASTSCAN_NBITS = 4  # FAISS's fast-scan kernels look codes up 4 bits at a time
# FAISS k-means warns below 39 training points per centroid; here that is an error.
MIN_POINTS_PER_CENTROID = 39
MAX_PQ_NBITS = 16


@dataclass(frozen=True)
class IndexSettings:
    type: str = "flat"  # flat | ivfpq | hnsw
    metric: str = "inner_product"  # cosine similarity on unit vectors
    ivf_nlist: int = 1024  # IVF cells
    pq_m: int = 128  # PQ sub-quantizers; must divide the dimension
    pq_nbits: int = 4  # bits per PQ sub-quantizer code (4 with the fastscan layout)
    pq_layout: str = "fastscan"  # fastscan (SIMD, CPU only) | standard (any width, GPU too)
    train_size: int = 100_000  # vectors sampled (seeded, across all shards) to train IVF-PQ
    nprobe: int = 32  # IVF cells visited per query
    refine: bool = True  # re-rank the IVF-PQ shortlist exactly on an fp16 copy of the vectors
    refine_k_factor: int = 8  # shortlist size = refine_k_factor · k
    hnsw_m: int = 32  # graph neighbours per node (2·hnsw_m on the bottom layer)
    hnsw_ef_construction: int = 200  # beam width while building the graph
    hnsw_ef_search: int = 128  # beam width while searching (raised to k when k is larger)
    device: str = "auto"  # auto (GPU when faiss-gpu sees one) | cpu | cuda
    seed: int = 0  # seeds the training sample and the k-means of IVF and PQ

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> IndexSettings:
        return cls(**strict_values(cls, section, "index"))

    def __post_init__(self) -> None:
        _choice("type", self.type, INDEX_TYPES)
        _choice("metric", self.metric, METRICS)
        _choice("device", self.device, DEVICES)
        _choice("pq_layout", self.pq_layout, PQ_LAYOUTS)
        for name in (
            "ivf_nlist",
            "pq_m",
            "train_size",
            "nprobe",
            "refine_k_factor",
            "hnsw_ef_construction",
            "hnsw_ef_search",
        ):
            _at_least(name, getattr(self, name), 1)
        _at_least("hnsw_m", self.hnsw_m, 2)
        _at_least("seed", self.seed, 0)
        _at_least("pq_nbits", self.pq_nbits, 1)
        if self.pq_nbits > MAX_PQ_NBITS:
            raise ValueError(f"index.pq_nbits={self.pq_nbits} must be an int in [1, 16]")
        if self.pq_layout == "fastscan" and self.pq_nbits != FASTSCAN_NBITS:
            raise ValueError(
                f"index.pq_nbits={self.pq_nbits} must be {FASTSCAN_NBITS} with index.pq_layout="
                "fastscan (FAISS's fast-scan codes are 4-bit); set index.pq_layout to standard "
                "for other code widths"
            )
        if self.type == "ivfpq" and self.pq_layout == "fastscan" and self.device == "cuda":
            raise ValueError(
                "index.pq_layout=fastscan has no GPU version in FAISS, so index.device=cuda "
                "cannot hold; set index.pq_layout to standard to search IVF-PQ on the GPU, or "
                "index.device to auto or cpu"
            )
        if not isinstance(self.refine, bool):
            raise ValueError(f"index.refine={self.refine!r} must be a bool (true or false)")
        if self.type == "ivfpq" and self.train_size < self.min_train_size:
            raise ValueError(
                f"index.train_size={self.train_size} is too small to train IVF-PQ: it needs "
                f">= {self.min_train_size} ({MIN_POINTS_PER_CENTROID} x max(index.ivf_nlist="
                f"{self.ivf_nlist}, 2**index.pq_nbits={2**self.pq_nbits})); raise "
                "index.train_size or lower index.ivf_nlist / index.pq_nbits"
            )

    @property
    def min_train_size(self) -> int:
        """Training vectors IVF-PQ needs: 39 per coarse cell and per PQ centroid."""
        return MIN_POINTS_PER_CENTROID * max(self.ivf_nlist, 2**self.pq_nbits)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"index.{name}={value!r} is not one of {list(allowed)}")


def _at_least(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"index.{name}={value!r} must be an int >= {low}")
