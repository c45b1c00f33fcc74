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
  when `refine` is on. The refine stage keeps an fp16 copy of every vector (a FAISS scalar
  quantizer, half of float32) and re-ranks the `refine_k_factor`·k PQ shortlist with exact
  inner products on it: PQ alone on 768-d embeddings rarely reaches recall@10 0.9, the re-rank
  does. At d=768, pq_m=64: 72 bytes without refine, 1,608 bytes with it (52 % of float32).
  The shortlist decides the recall: on benchmarks/index_search.py (200k x 768) recall@10 is
  0.70 with PQ ranking alone, 0.89 with a 4·k shortlist and 0.96 with 8·k (the default here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from geoloc_core.section_fields import strict_values

INDEX_TYPES = ("flat", "ivfpq", "hnsw")
METRICS = ("inner_product",)
DEVICES = ("auto", "cpu", "cuda")
# FAISS k-means warns below 39 training points per centroid; here that is an error.
MIN_POINTS_PER_CENTROID = 39
MAX_PQ_NBITS = 16


@dataclass(frozen=True)
class IndexSettings:
    type: str = "flat"  # flat | ivfpq | hnsw
    metric: str = "inner_product"  # cosine similarity on unit vectors
    ivf_nlist: int = 1024  # IVF cells
    pq_m: int = 64  # PQ sub-quantizers; must divide the dimension
    pq_nbits: int = 8  # bits per PQ sub-quantizer code
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
