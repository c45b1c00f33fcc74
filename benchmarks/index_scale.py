"""The IVF-PQ index at MP16 scale on this machine: peak memory against codes + one shard, recall.

Workload: --rows reference vectors (default 1,000,000) of G3's width (2304 = 3 x 768), written
shard by shard to .npy files in fp16, as the embedding step stores them, never all in memory.
They are shaped like CLIP image embeddings rather than iid noise, so that a top-10 means
something: every vector shares a mean direction (CLIP embeddings of photos sit in a narrow
cone: mean cosine between random pairs ~0.15 here), lies mostly in a 256-d "semantic" subspace
with a decaying spectrum, and comes from a hierarchy of 2,000 scenes > 50,000 places
(~20 references each at 1M), plus isotropic noise over all 2304 dimensions. Queries are new draws
from random places (not copies of references), so each has ~20 true near neighbours.

What runs, each in its own child process so its peak RSS is its own:
- build: `build_index_from_shards` (sample + train, then fill shard by shard; the fp16 refine
  copy is written to disk as it fills), `save_index`, `load_index` (the copy memory-mapped),
  and the search of --queries queries. Peak RSS (VmHWM) per phase, against the bound
  1.3 x (codes + one shard + the child's RSS before it read any vector), where codes = the
  saved index file (PQ codes, ids, centroids) and one shard = the largest shard's bytes.
- exact: the exact top-10 by inner product, shard by shard over the memory-mapped fp16 files
  (float32 arithmetic), for recall@10.

    python benchmarks/index_scale.py [--rows 1000000] [--shard-rows 62500] [--dir DIR]

Generated shards are kept in --dir (default: a folder under /tmp) and reused when their spec
matches; --clean removes them afterwards. Needs ~2 x rows x 4.6 KB of disk (shards + copy).
On a loaded machine run it with OMP_NUM_THREADS=1 (FAISS's OpenMP barriers stall under
contention: docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DIM = 2304
K = 10
LATENT = 256
SCENES = 2_000
PLACES = 50_000
MEAN_WEIGHT = 0.55  # of the mean direction, against ~1 for the rest: mean pair cosine ~0.15
NOISE = 0.5  # isotropic noise norm against the semantic part's ~1
# Chosen on this workload (docs/performance.md): 512 cells keep the training sample (39 x 512
# vectors, float32) near one shard; PQ 256x4 fast-scan (128-byte codes); the sweep below shows
# what nprobe and the shortlist buy in recall@10.
INDEX = {
    "type": "ivfpq",
    "ivf_nlist": 512,
    "pq_m": 256,
    "pq_nbits": 4,
    "pq_layout": "fastscan",
    "train_size": 20_000,
    "nprobe": 128,
    "refine": True,
    "refine_k_factor": 32,
    "device": "cpu",
    "seed": 0,
}
# Search settings also tried on the same index (the build dominates; searching is cheap).
SWEEP = ((24, 12), (32, 16), (64, 8), (96, 16), (128, 32))


# --- synthetic CLIP-like vectors --------------------------------------------------------------


class World:
    """The fixed parts of the generator: mean direction, semantic basis, scenes and places."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.mean = _unit(rng.standard_normal((1, DIM), np.float32))[0]
        self.basis = rng.standard_normal((LATENT, DIM), np.float32) / np.sqrt(DIM)
        spectrum = (np.arange(1, LATENT + 1, dtype=np.float32) ** -0.6).astype(np.float32)
        self.scale = spectrum / np.sqrt((spectrum**2).sum())  # latent draws of norm ~1
        scenes = rng.standard_normal((SCENES, LATENT), np.float32) * self.scale
        parent = rng.integers(0, SCENES, PLACES)
        noise = rng.standard_normal((PLACES, LATENT), np.float32) * self.scale
        self.places = scenes[parent] + 0.6 * noise

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n unit vectors (float32): a random place's latent + own variation, lifted to DIM."""
        place = rng.integers(0, PLACES, n)
        latent = self.places[place] + 0.45 * rng.standard_normal((n, LATENT), np.float32) * (
            self.scale
        )
        vectors = latent @ self.basis
        vectors += MEAN_WEIGHT * self.mean
        # uniform noise of the same variance: a third of a normal draw's cost, same geometry here
        vectors += (rng.random((n, DIM), np.float32) - 0.5) * (NOISE * np.sqrt(12 / DIM))
        return _unit(vectors)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def write_shards(folder: Path, rows: int, shard_rows: int, queries: int, seed: int) -> list[Path]:
    """The shard files (fp16), generated one at a time; reused when the spec matches."""
    spec = {"rows": rows, "shard_rows": shard_rows, "queries": queries, "seed": seed, "v": 3}
    spec_file = folder / "spec.json"
    files = [folder / f"shard-{i:04d}.npy" for i in range(-(-rows // shard_rows))]
    made = all(f.is_file() for f in files) and (folder / "queries.npy").is_file()
    if made and spec_file.is_file() and json.loads(spec_file.read_text()) == spec:
        return files
    folder.mkdir(parents=True, exist_ok=True)
    spec_file.unlink(missing_ok=True)
    world = World(seed)
    start = time.perf_counter()
    for number, path in enumerate(files):
        n = min(shard_rows, rows - number * shard_rows)
        rng = np.random.default_rng([seed, number])
        np.save(path, world.draw(rng, n).astype(np.float16))
        print(f"  shard {number + 1}/{len(files)} written ({time.perf_counter() - start:.0f} s)")
    np.save(folder / "queries.npy", world.draw(np.random.default_rng([seed, 10**6]), queries))
    spec_file.write_text(json.dumps(spec))
    return files


# --- the children ---------------------------------------------------------------------------


def status(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as lines:
        line = next(line for line in lines if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux >= 4.0)


def build_child(folder: Path, files: list[Path], out: Path) -> None:
    import faiss

    from geoloc_core.retrieval.index import (
        build_index_from_shards,
        load_index,
        refine_building_file,
        save_index,
        search,
    )
    from geoloc_core.retrieval.index_settings import IndexSettings

    settings = IndexSettings(**json.loads((folder / "index.json").read_text()))
    queries = np.load(folder / "queries.npy")
    index_file = folder / "index" / "reference.faiss"
    loaders = [lambda path=path: np.load(path) for path in files]
    report: dict[str, object] = {"threads": faiss.omp_get_max_threads()}
    reset_peak()
    report["base_rss"] = status("VmRSS")
    phases = {}

    def phase(name: str, work):
        reset_peak()
        start = time.perf_counter()
        result = work()
        phases[name] = {"s": time.perf_counter() - start, "peak_rss": status("VmHWM")}
        print(f"  {name}: {phases[name]['s']:.1f} s, peak RSS {phases[name]['peak_rss'] >> 20} MiB")
        return result

    steps: list[dict[str, object]] = []

    def say(message: str) -> None:
        """The build's own log lines, each closing a step: its peak RSS since the last one."""
        steps.append({"after": message, "peak_rss": status("VmHWM"), "t": time.perf_counter()})
        reset_peak()
        print(f"  {message} (peak RSS since the last line {steps[-1]['peak_rss'] >> 20} MiB)")

    built = [
        phase(
            "build",
            lambda: build_index_from_shards(
                loaders, settings, say, refine_building_file(index_file)
            ),
        )
    ]
    build = phases["build"]  # its peak: the highest of the steps' and the end's
    build["peak_rss"] = max([build["peak_rss"], *(step["peak_rss"] for step in steps)])
    phase("save", lambda: save_index(built[0], index_file))
    built.clear()  # the search below uses the saved index, its copy memory-mapped
    loaded = phase("load", lambda: load_index(index_file))
    _, positions = phase("search", lambda: search(loaded, queries, K, settings))
    np.save(folder / "found.npy", positions)
    sweep = []
    for nprobe, k_factor in SWEEP:
        knobs = IndexSettings(
            **{**settings.__dict__, "nprobe": nprobe, "refine_k_factor": k_factor}
        )
        start = time.perf_counter()
        found = search(loaded, queries, K, knobs)[1]
        sweep.append(
            {"nprobe": nprobe, "refine_k_factor": k_factor, "s": time.perf_counter() - start}
        )
        np.save(folder / f"found-{nprobe}-{k_factor}.npy", found)
    report["sweep"] = sweep
    report["sweep_peak_rss"] = status("VmHWM")
    report["phases"] = phases
    report["build_steps"] = steps
    report["index_file_bytes"] = index_file.stat().st_size
    report["refine_file_bytes"] = index_file.with_name("reference.refine.npy").stat().st_size
    report["largest_shard_bytes"] = max(
        int(np.prod(np.load(p, mmap_mode="r").shape)) * 2 for p in files
    )
    report["peak_rss"] = max(p["peak_rss"] for p in phases.values())
    out.write_text(json.dumps(report))


def exact_child(folder: Path, files: list[Path], out: Path) -> None:
    """The exact top-K of every query, merged shard by shard over the memory-mapped files."""
    queries = np.load(folder / "queries.npy")
    best_scores = np.full((len(queries), K), -np.inf, np.float32)
    best_positions = np.full((len(queries), K), -1, np.int64)
    offset, step = 0, 16_384
    start = time.perf_counter()
    for path in files:
        vectors = np.load(path, mmap_mode="r")
        for begin in range(0, len(vectors), step):
            block = _unit(np.asarray(vectors[begin : begin + step], np.float32))
            scores = queries @ block.T
            top = np.argpartition(-scores, K - 1, axis=1)[:, :K]
            merged_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, 1)], 1)
            merged_positions = np.concatenate([best_positions, top + offset + begin], 1)
            keep = np.argsort(-merged_scores, axis=1, kind="stable")[:, :K]
            best_scores = np.take_along_axis(merged_scores, keep, 1)
            best_positions = np.take_along_axis(merged_positions, keep, 1)
        offset += len(vectors)
    np.save(folder / "exact.npy", best_positions)
    report = {"s": time.perf_counter() - start, "peak_rss": status("VmHWM")}
    report["median_scores"] = np.median(best_scores, axis=0).round(3).tolist()
    out.write_text(json.dumps(report))


def run_child(kind: str, folder: Path, files: list[Path]) -> dict:
    out = folder / f"{kind}.report.json"
    out.unlink(missing_ok=True)
    command = [sys.executable, __file__, "--child", kind, "--dir", str(folder)]
    command += [str(f) for f in files]
    subprocess.run(command, check=True, cwd=REPO)
    return json.loads(out.read_text())


# --- the parent -------------------------------------------------------------------------------


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(found, truth, strict=True)]))


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--shard-rows", type=int, default=62_500)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/geoloc-index-scale"))
    parser.add_argument("--index", type=json.loads, default={}, help="IndexSettings overrides")
    parser.add_argument("--clean", action="store_true", help="remove the generated files after")
    parser.add_argument("--child", choices=("build", "exact"), help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        (build_child if args.child == "build" else exact_child)(
            args.dir, args.files, args.dir / f"{args.child}.report.json"
        )
        return
    settings = {**INDEX, **args.index}
    print(f"generating {args.rows:,} x {DIM} in shards of {args.shard_rows:,} into {args.dir}")
    start = time.perf_counter()
    files = write_shards(args.dir, args.rows, args.shard_rows, args.queries, args.seed)
    generate_s = time.perf_counter() - start
    (args.dir / "index.json").write_text(json.dumps(settings))
    exact_report = args.dir / "exact.report.json"
    if (
        exact_report.is_file()
        and exact_report.stat().st_mtime > (args.dir / "spec.json").stat().st_mtime
    ):
        exact = json.loads(exact_report.read_text())  # these shards' exact top-k, from before
    else:
        print("exact search, shard by shard")
        exact = run_child("exact", args.dir, files)
    print(f"index: {settings}")
    build = run_child("build", args.dir, files)
    found, truth = np.load(args.dir / "found.npy"), np.load(args.dir / "exact.npy")
    hits = recall(found, truth)
    for point in build["sweep"]:
        found_here = np.load(args.dir / f"found-{point['nprobe']}-{point['refine_k_factor']}.npy")
        point["recall_at_10"] = recall(found_here, truth)
        print(
            f"  nprobe {point['nprobe']:3d}, shortlist {point['refine_k_factor']:2d}·k: "
            f"recall@10 {point['recall_at_10']:.3f}, {point['s']:.2f} s"
        )
    codes, shard, base = build["index_file_bytes"], build["largest_shard_bytes"], build["base_rss"]
    bound = 1.3 * (codes + shard + base)
    phases = build["phases"]
    result = {
        "rows": args.rows,
        "dim": DIM,
        "shard_rows": args.shard_rows,
        "queries": args.queries,
        "index": settings,
        "generate_s": generate_s,
        "exact": exact,
        "build": build,
        "recall_at_10": hits,
        "bound_bytes": bound,
        "peak_over_bound": build["peak_rss"] / bound,
    }
    (args.dir / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(
        f"\n{args.rows:,} x {DIM}: peak RSS {mib(build['peak_rss'])} vs 1.3 x (codes "
        f"{mib(codes)} + one shard {mib(shard)} + base {mib(base)}) = {mib(bound)}: "
        f"{build['peak_rss'] / bound:.2f} of the bound (goal <= 1); recall@10 {hits:.3f} "
        f"(goal >= 0.9); build {phases['build']['s']:.0f} s, search "
        f"{phases['search']['s']:.2f} s for {args.queries} queries, exact search {exact['s']:.0f} s"
    )
    if args.clean:
        for path in [*files, *args.dir.glob("index/*"), *args.dir.glob("*.npy")]:
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
