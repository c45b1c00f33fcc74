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
  The refine stage keeps an fp16 copy of every unit vector (half of float32) in a file beside
  the index (reference.refine.npy), written shard by shard while the index fills and
  memory-mapped when it is searched, and re-ranks the `refine_k_factor`·k PQ shortlist with
  exact inner products on the shortlist's rows only (retrieval/refine.py): PQ alone on 768-d
  embeddings rarely reaches recall@10 0.9, the re-rank does. In RAM: the code + 8 bytes (72 at
  64-byte codes); on disk 2·d more (MP16 at G3's 2304-d: 4.6 KB a vector, 21 GB, never loaded
  whole). `refine: false` keeps no copy. The shortlist decides the recall
  (benchmarks/index_search.py reports PQ ranking alone, 4·k and 8·k; benchmarks/index_scale.py
  1M x 2304).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from geoloc_core.section_model import FLAG, SectionModel, whole

INDEX_TYPES = ("flat", "ivfpq", "hnsw")
METRICS = ("inner_product",)
DEVICES = ("auto", "cpu", "cuda")
PQ_LAYOUTS = ("fastscan", "standard")
FASTSCAN_NBITS = 4  # FAISS's fast-scan kernels look codes up 4 bits at a time
# FAISS k-means warns below 39 training points per centroid; here that is an error.
MIN_POINTS_PER_CENTROID = 39
MAX_PQ_NBITS = 16


class IndexSettings(SectionModel):
    """The FAISS index over every embedding shard (asset retrieval_index) and how it is
    searched; memory per type in this module's docstring."""

    SECTION = "index"

    type: Literal[INDEX_TYPES] = Field("flat", description="flat | ivfpq | hnsw")
    metric: Literal[METRICS] = Field(
        "inner_product", description="inner_product: cosine on unit vectors"
    )
    ivf_nlist: whole(ge=1) = Field(1024, description="ivfpq: coarse cells")
    pq_m: whole(ge=1) = Field(
        128, description="ivfpq: sub-quantizers (must divide the vector dimension)"
    )
    pq_nbits: whole(ge=1, le=MAX_PQ_NBITS) = Field(
        4, description="ivfpq: bits per code (4 with pq_layout fastscan)"
    )
    pq_layout: Literal[PQ_LAYOUTS] = Field(
        "fastscan",
        description="ivfpq: fastscan (SIMD 4-bit, CPU only) | standard (GPU: 64 x 8)",
    )
    train_size: whole(ge=1) = Field(
        100_000, description="ivfpq: vectors sampled across shards to train on"
    )
    nprobe: whole(ge=1) = Field(32, description="ivfpq: cells visited per query")
    refine: FLAG = Field(
        True,
        description="ivfpq: exact re-scoring of the shortlist (fp16 copy on disk, memory-mapped)",
    )
    refine_k_factor: whole(ge=1) = Field(8, description="ivfpq: shortlist = refine_k_factor x k")
    hnsw_m: whole(ge=2) = Field(
        32, description="hnsw: graph neighbours per node (2 x hnsw_m on the bottom layer)"
    )
    hnsw_ef_construction: whole(ge=1) = Field(
        200, description="hnsw: beam width while building the graph"
    )
    hnsw_ef_search: whole(ge=1) = Field(
        128, description="hnsw: beam width while searching (raised to k when k is larger)"
    )
    device: Literal[DEVICES] = Field(
        "auto",
        description="auto: faiss-gpu when installed and a GPU is seen (HNSW and fast-scan "
        "IVF-PQ stay on CPU) | cpu | cuda",
    )
    seed: whole(ge=0) = Field(
        0, description="seeds the training sample and the k-means of IVF and PQ"
    )

    @model_validator(mode="after")
    def _layout_fits(self) -> IndexSettings:
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
        if self.type == "ivfpq" and self.train_size < self.min_train_size:
            raise ValueError(
                f"index.train_size={self.train_size} is too small to train IVF-PQ: it needs "
                f">= {self.min_train_size} ({MIN_POINTS_PER_CENTROID} x max(index.ivf_nlist="
                f"{self.ivf_nlist}, 2**index.pq_nbits={2**self.pq_nbits})); raise "
                "index.train_size or lower index.ivf_nlist / index.pq_nbits"
            )
        return self

    @property
    def min_train_size(self) -> int:
        """Training vectors IVF-PQ needs: 39 per coarse cell and per PQ centroid."""
        return MIN_POINTS_PER_CENTROID * max(self.ivf_nlist, 2**self.pq_nbits)
