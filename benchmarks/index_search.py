"""FAISS index search on this machine: recall, speed and memory of flat, IVF-PQ and HNSW.

Workload: 768-d unit vectors shaped like image embeddings of photos of places, so that a top-10
means something: random region directions > cities > places > references, each level a noisy
copy of a random parent (noise s·g/sqrt(d), g standard normal, so cosine to the parent is
1/sqrt(1+s²): cities 1.0 → 0.71, places 0.8 → 0.78, references 0.6 → 0.86; ~5 references per
place). Queries are noisy copies of random references (s = 0.5: cosine 0.89 to their source),
whose exact top-10 decays smoothly (median score 0.89 at rank 1, 0.45 at rank 10), as with real
embeddings. Pure random unit queries are reported too, for honesty: in 768-d they have no
meaningful nearest neighbour (their top-10 scores are near-ties), so no index is expected to
find their exact top-10.

Sizes: flat and IVF-PQ over --size references (default 200,000); HNSW over the first
--hnsw-size (default 50,000), because building its graph costs ~1 ms per 768-d vector on
2 cores. The default run takes about 4 minutes on 2 cores. Index settings are the IndexSettings
defaults (params.yaml's `index` values), all cores for FAISS and BLAS. Searches are timed
--repeats times and the median is reported (builds once).

    python benchmarks/index_search.py [--size 200000] [--hnsw-size 50000] [--queries 1000]

OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, where set, slow a current numpy: the script re-executes
itself once without them (its own process only) and prints the BLAS kernels that ran.
Not a test: it prints numbers and ratios.
"""

from __future__ import annotations

import os

from bench_rows import reexec_without_blas_overrides

if __name__ == "__main__":
    reexec_without_blas_overrides()

import argparse
import itertools
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np
from bench_machine import numpy_matmul_gflops
from bench_rows import NONE, Row, bench_parser, print_and_write, verdict
from bench_rows import timed as timed_runs
from threadpoolctl import threadpool_info, threadpool_limits

from geoloc_core.params import load_params, section
from geoloc_core.retrieval.index import (
    build_index_from_shards,
    index_disk_bytes_per_vector,
    refine_file_of,
    save_index,
    search,
)
from geoloc_core.retrieval.index_settings import MIN_POINTS_PER_CENTROID, IndexSettings

DIM = 768
K = 10
SHARDS = 4
CHUNK = 20_000
QUERY_NOISE = 0.5
LEVELS = (("cities", 200, 1.0), ("places", 5, 0.8))  # (name, references per item, noise)
REFERENCE_NOISE = 0.6
GOALS = {"hnsw_recall": 0.95, "ivfpq_recall": 0.9, "ivfpq_speedup": 10.0, "flat_bound": 1.25}
SECTION = "2 retrieval"
REPO = Path(__file__).resolve().parent.parent


def unit(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


def noisy(rng: np.random.Generator, vectors: np.ndarray, noise: float) -> np.ndarray:
    """A unit vector near each given one: cosine about 1/sqrt(1 + noise²)."""
    g = rng.standard_normal(vectors.shape, dtype=np.float32)
    return unit(vectors + noise * g / np.sqrt(DIM))


def references(n: int, rng: np.random.Generator) -> np.ndarray:
    parents = unit(rng.standard_normal((max(1, n // 5000), DIM), dtype=np.float32))
    for _, per_item, noise in LEVELS:
        count = max(1, n // per_item)
        parents = noisy(rng, parents[rng.integers(0, len(parents), count)], noise)
    out = np.empty((n, DIM), np.float32)
    for start in range(0, n, CHUNK):
        picks = rng.integers(0, len(parents), min(CHUNK, n - start))
        out[start : start + len(picks)] = noisy(rng, parents[picks], REFERENCE_NOISE)
    return out


def copies_of(vectors: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    return noisy(rng, vectors[rng.choice(len(vectors), count, replace=False)], QUERY_NOISE)


def ivfpq_settings(size: int) -> IndexSettings:
    """params.yaml's index values as IVF-PQ; below 39 x nlist references, the most IVF cells
    that size can train."""
    index = section(load_params(REPO), "index")
    settings = IndexSettings.from_section({**index, "type": "ivfpq", "device": "cpu"})
    cells = settings.ivf_nlist
    while cells > 1 and size < MIN_POINTS_PER_CENTROID * cells:
        cells //= 2
    if cells != settings.ivf_nlist:
        print(f"IVF-PQ: {size:,} references train at most {cells} cells, not {settings.ivf_nlist}")
    return replace(settings, ivf_nlist=cells)


def standard_counterpart(settings: IndexSettings) -> IndexSettings | None:
    """The standard 8-bit layout with codes as long as the fast-scan ones (what GPU FAISS runs),
    to measure the layout choice side by side; None when the settings are standard already."""
    if settings.pq_layout == "standard":
        return None
    code_bytes = settings.pq_m * settings.pq_nbits // 8
    return replace(settings, pq_layout="standard", pq_m=code_bytes, pq_nbits=8)


def shard_loaders(vectors: np.ndarray) -> list[Callable[[], np.ndarray]]:
    bounds = np.linspace(0, len(vectors), SHARDS + 1).astype(int)
    return [lambda a=a, b=b: vectors[a:b] for a, b in itertools.pairwise(bounds)]


def timed(work: Callable[[], object], repeat: int = 1) -> tuple[object, float]:
    """(result, median wall seconds over `repeat` runs)."""
    result, timing = timed_runs(work, repeat)
    return result, timing.median


def product_only(queries: np.ndarray, vectors: np.ndarray, block: int = 4096) -> None:
    """The flat search's matrix product alone, in FAISS's database blocks (DATABASE_BLOCK in
    geoloc_core/retrieval/index.py), without the top-k: what the search costs at this shape."""
    for start in range(0, len(vectors), block):
        queries @ vectors[start : start + block].T


def numpy_top_k(queries: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same top-k as a flat index: matmul, argpartition, sort the k (queries in blocks)."""
    scores = np.empty((len(queries), K), np.float32)
    positions = np.empty((len(queries), K), np.int64)
    for start in range(0, len(queries), 250):
        block = queries[start : start + 250] @ vectors.T
        top = np.argpartition(-block, K - 1, axis=1)[:, :K]
        top_scores = np.take_along_axis(block, top, axis=1)
        order = np.argsort(-top_scores, axis=1)
        positions[start : start + 250] = np.take_along_axis(top, order, axis=1)
        scores[start : start + 250] = np.take_along_axis(top_scores, order, axis=1)
    return scores, positions


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = [len(np.intersect1d(a, b)) for a, b in zip(found, truth, strict=True)]
    return float(np.mean(hits)) / truth.shape[1]


def bytes_per_vector(index: faiss.Index, folder: Path) -> float:
    """Bytes saved per vector: the index file plus IVF-PQ's refine copy beside it (on disk,
    memory-mapped when searched)."""
    path = folder / "index.faiss"
    save_index(index, path)
    files = [path, refine_file_of(path)]
    size = sum(f.stat().st_size for f in files if f.is_file())
    for f in files:
        f.unlink(missing_ok=True)
    return size / index.ntotal


def blas_kernels() -> str:
    return "; ".join(
        f"{Path(info['filepath']).parent.parent.name}/{Path(info['filepath']).name}: "
        f"{info['internal_api']} {info.get('architecture', '?')} x{info['num_threads']}"
        for info in threadpool_info()
        if info["user_api"] == "blas"
    )


def measure(args: argparse.Namespace, folder: Path) -> list[Row]:
    rng = np.random.default_rng(args.seed)
    nq = args.queries
    reps = args.repeats
    rate = numpy_matmul_gflops()
    print(f"numpy float32 matmul (2048², best of 10): {rate:.1f} GFLOP/s")

    vectors, seconds = timed(lambda: references(args.size, rng))
    near = copies_of(vectors, nq, rng)
    far = unit(rng.standard_normal((nq, DIM), dtype=np.float32))
    print(f"data: {args.size:,} x {DIM} references in {seconds:.1f} s; {nq} queries of each kind")

    flat_settings = IndexSettings(type="flat")
    flat, flat_build = timed(lambda: build_index_from_shards(shard_loaders(vectors), flat_settings))
    (flat_scores, truth), flat_s = timed(lambda: search(flat, near, K), reps)
    far_scores, truth_far = search(flat, far, K)
    (np_scores, np_positions), numpy_s = timed(lambda: numpy_top_k(near, vectors), reps)
    _, product = timed_runs(lambda: product_only(near, vectors), reps)
    product_s = min(product.samples)  # a limit: the least disturbed run
    same = float(np.mean([set(a) == set(b) for a, b in zip(truth, np_positions, strict=True)]))
    score_gap = float(np.abs(flat_scores - np_scores).max())
    bound_s = 2 * nq * args.size * DIM / (rate * 1e9)
    near_ranks, far_ranks = np.median(flat_scores, axis=0), np.median(far_scores, axis=0)
    print(
        f"exact top-10, median score at rank 1 and 10: noisy copies {near_ranks[0]:.2f}, "
        f"{near_ranks[-1]:.2f}; random queries {far_ranks[0]:.2f}, {far_ranks[-1]:.2f}"
    )
    flat_memory = bytes_per_vector(flat, folder)
    flat.reset()  # frees its vectors

    ivf_settings = ivfpq_settings(args.size)
    ivf, ivf_build = timed(lambda: build_index_from_shards(shard_loaders(vectors), ivf_settings))
    (_, ivf_positions), ivf_s = timed(lambda: search(ivf, near, K, ivf_settings), reps)
    ivf_recall = recall(ivf_positions, truth)
    shortlist_recall = {
        factor: recall(
            search(ivf, near, K, replace(ivf_settings, refine_k_factor=factor))[1], truth
        )
        for factor in (1, 4)
    }
    ivf_far = recall(search(ivf, far, K, ivf_settings)[1], truth_far)
    ivf_memory = bytes_per_vector(ivf, folder)
    ivf.reset()
    standard_settings = standard_counterpart(ivf_settings)
    standard = None
    if standard_settings is not None:
        other, other_build = timed(
            lambda: build_index_from_shards(shard_loaders(vectors), standard_settings)
        )
        (_, other_positions), other_s = timed(
            lambda: search(other, near, K, standard_settings), reps
        )
        standard = (standard_settings, recall(other_positions, truth), other_s, other_build)
        other.reset()

    subset = vectors[: args.hnsw_size]
    near_subset = copies_of(subset, nq, rng)
    subset_flat = build_index_from_shards(shard_loaders(subset), flat_settings)
    (_, subset_truth), subset_flat_s = timed(lambda: search(subset_flat, near_subset, K), reps)
    subset_truth_far = search(subset_flat, far, K)[1]
    subset_flat.reset()
    hnsw_settings = IndexSettings(type="hnsw")
    hnsw, hnsw_build = timed(lambda: build_index_from_shards(shard_loaders(subset), hnsw_settings))
    (_, hnsw_positions), hnsw_s = timed(
        lambda: search(hnsw, near_subset, K, hnsw_settings), reps
    )
    hnsw_recall = recall(hnsw_positions, subset_truth)
    hnsw_far = recall(search(hnsw, far, K, hnsw_settings)[1], subset_truth_far)
    hnsw_memory = bytes_per_vector(hnsw, folder)

    big, small = f"{args.size // 1000}k", f"{args.hnsw_size // 1000}k"
    speedup = flat_s / ivf_s
    estimate = {
        s.type: index_disk_bytes_per_vector(s, DIM)
        for s in (flat_settings, ivf_settings, hnsw_settings)
    }
    timings = {
        "flat_search_s": flat_s,
        "numpy_search_s": numpy_s,
        "ivfpq_search_s": ivf_s,
        "hnsw_search_s": hnsw_s,
        "subset_flat_search_s": subset_flat_s,
        "repeats": reps,
        "queries": nq,
    }

    def row(what: str, ours: str, peer: str, ratio: str, goal: str = NONE, met: str = NONE,
            **values: object) -> Row:
        return Row(SECTION, what, ours, peer, ratio, goal, met, {**values})

    def recall_row(what: str, recall: float, goal_key: str, **values: object) -> Row:
        """recall@10 against the exact flat search, whose own recall is 1 by definition."""
        goal = GOALS[goal_key]
        return row(
            what, f"{recall:.3f}", "1.000", f"{recall:.3f}", f">= {goal}",
            verdict(recall, goal), recall=recall, **values,
        )

    layout = (
        f"PQ {ivf_settings.pq_m}x{ivf_settings.pq_nbits} {ivf_settings.pq_layout}, "
        f"nprobe {ivf_settings.nprobe}"
    )
    layout_rows = []
    if standard is not None:
        other_settings, other_recall, other_s, other_build = standard
        layout_rows.append(
            row(
                f"IVF-PQ layout: {layout} vs PQ {other_settings.pq_m}x{other_settings.pq_nbits} "
                f"standard (same {other_settings.pq_m}-byte codes; GPU FAISS has no fast-scan): "
                "queries/s; recall@10; build s",
                f"{nq / ivf_s:,.0f}; {ivf_recall:.3f}; {ivf_build:.1f}",
                f"{nq / other_s:,.0f}; {other_recall:.3f}; {other_build:.1f}",
                f"search {other_s / ivf_s:.1f}x, build {other_build / ivf_build:.1f}x faster",
                "report",
                standard_search_s=other_s,
                standard_recall=other_recall,
                standard_build_s=other_build,
            )
        )
    return [
        row(
            f"flat search s, {nq} queries, vs matmul bound 2·nq·N·d / {rate:.0f} GFLOP/s "
            f"({big} x {DIM})",
            f"{flat_s:.2f}",
            f"{bound_s:.2f}",
            f"{flat_s / bound_s:.2f}",
            f"<= {GOALS['flat_bound']}",
            verdict(flat_s / bound_s, GOALS["flat_bound"], False),
            numpy_matmul_gflops=rate,
            bound_s=bound_s,
            **timings,
        ),
        row(
            f"flat search s vs its matrix product alone at this shape ({nq} x {DIM} x {big}, "
            "4096-row blocks, no top-k; best of runs)",
            f"{flat_s:.2f}",
            f"{product_s:.2f}",
            f"{flat_s / product_s:.2f}",
            f"report (the product alone is {product_s / bound_s:.2f}x of the 2048² bound)",
            product_s=product_s,
        ),
        row(
            f"flat search s vs numpy matmul + argpartition ({big})",
            f"{flat_s:.2f}",
            f"{numpy_s:.2f}",
            f"{numpy_s / flat_s:.2f}x faster",
            f"report (same top-10: {same:.1%}, max score diff {score_gap:.1e})",
            same_top10=same,
            max_score_diff=score_gap,
        ),
        recall_row(
            f"IVF-PQ recall@10 vs flat ({big}, noisy copies, shortlist "
            f"{ivf_settings.refine_k_factor}·k)",
            ivf_recall,
            "ivfpq_recall",
            nlist=ivf_settings.ivf_nlist,
            nprobe=ivf_settings.nprobe,
            refine_k_factor=ivf_settings.refine_k_factor,
        ),
        row(
            f"IVF-PQ queries/s vs flat ({big}, {layout})",
            f"{nq / ivf_s:,.0f}",
            f"{nq / flat_s:,.0f}",
            f"{speedup:.1f}x",
            f">= {GOALS['ivfpq_speedup']:.0f}x",
            verdict(speedup, GOALS["ivfpq_speedup"]),
            speedup=speedup,
        ),
        *layout_rows,
        row(
            "IVF-PQ recall@10, shortlist 4·k / PQ ranking only (1·k)",
            f"{shortlist_recall[4]:.3f} / {shortlist_recall[1]:.3f}",
            "1.000",
            NONE,
            "report",
            recall_shortlist_4k=shortlist_recall[4],
            recall_shortlist_1k=shortlist_recall[1],
        ),
        recall_row(f"HNSW recall@10 vs flat ({small}, noisy copies)", hnsw_recall, "hnsw_recall"),
        row(
            f"HNSW queries/s vs flat ({small})",
            f"{nq / hnsw_s:,.0f}",
            f"{nq / subset_flat_s:,.0f}",
            f"{subset_flat_s / hnsw_s:.1f}x",
            "report",
        ),
        row(
            "memory B/vector: flat (est. 4·d)",
            f"{flat_memory:,.0f}",
            f"{estimate['flat']:,.0f}",
            f"{flat_memory / estimate['flat']:.2f}",
            "report",
            bytes_per_vector=flat_memory,
            estimate=estimate["flat"],
        ),
        row(
            "memory B/vector: IVF-PQ + fp16 refine (the copy on disk) vs flat",
            f"{ivf_memory:,.0f}",
            f"{flat_memory:,.0f}",
            f"{ivf_memory / flat_memory:.2f}",
            f"report (est. {estimate['ivfpq']:,.0f})",
            bytes_per_vector=ivf_memory,
            estimate=estimate["ivfpq"],
        ),
        row(
            "memory B/vector: HNSW vs flat",
            f"{hnsw_memory:,.0f}",
            f"{flat_memory:,.0f}",
            f"{hnsw_memory / flat_memory:.2f}",
            f"report (est. {estimate['hnsw']:,.0f})",
            bytes_per_vector=hnsw_memory,
            estimate=estimate["hnsw"],
        ),
        row(
            f"build s: IVF-PQ (sample+train+add, {big}) vs flat / HNSW ({small})",
            f"{ivf_build:.1f}",
            f"{flat_build:.1f} / {hnsw_build:.1f}",
            f"HNSW {1000 * hnsw_build / len(subset):.2f} ms/vector",
            "report",
            ivfpq_build_s=ivf_build,
            flat_build_s=flat_build,
            hnsw_build_s=hnsw_build,
        ),
        row(
            "recall@10 on pure random queries: HNSW / IVF-PQ",
            f"{hnsw_far:.3f} / {ivf_far:.3f}",
            "1.000",
            NONE,
            "none: no meaningful neighbours",
            hnsw=hnsw_far,
            ivfpq=ivf_far,
        ),
    ]


def run(
    size: int = 200_000, hnsw_size: int = 50_000, queries: int = 1000, repeats: int = 3,
    seed: int = 0,
) -> list[Row]:
    """The rows, with every core for FAISS and BLAS (what the index step gets)."""
    args = argparse.Namespace(
        size=size, hnsw_size=min(hnsw_size, size), queries=queries, repeats=repeats, seed=seed
    )
    cores = os.cpu_count() or 1
    faiss.omp_set_num_threads(cores)
    unset = os.environ.get("GEOLOC_BENCH_UNSET_BLAS")
    print(
        f"{args.size:,} references x {DIM} (HNSW: {args.hnsw_size:,}), {args.queries} queries, "
        f"{cores} cores, load average {os.getloadavg()[0]:.1f}"
        + (f"; unset for this run: {unset}" if unset else "")
    )
    start = time.perf_counter()
    with threadpool_limits(cores), tempfile.TemporaryDirectory() as tmp:
        print(f"BLAS: {blas_kernels()}")
        rows = measure(args, Path(tmp))
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"total {time.perf_counter() - start:.0f} s; load average at the end {load}")
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--size", type=int, default=200_000, help="references for flat, IVF-PQ")
    parser.add_argument("--hnsw-size", type=int, default=50_000, help="references for HNSW")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each search")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = run(args.size, args.hnsw_size, args.queries, args.repeats, args.seed)
    print_and_write("FAISS index search", rows, args.json)


if __name__ == "__main__":
    main()
