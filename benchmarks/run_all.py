"""`make bench`: every performance benchmark in one command, one table, one JSON file.

Each benchmark script runs in its own child process (its own threads, FAISS state and peak
memory; a failure in one does not stop the others) with the sizes below, and hands back its
rows as JSON. The runner prints one markdown table (what | ours | peer or limit | ratio |
goal | met?) and writes benchmarks/results.json: the machine (CPU model, cores, RAM), Python
and library versions, the load average around each benchmark (the machine may be shared),
the sizes, every row with its raw values (timed parts: median of several runs, and the runs).

The sizes are chosen so the whole command fits in about 20 minutes on 2 cores, pipeline
included (the pipeline's size is the demo's own and cannot shrink); each script run alone
keeps its larger defaults.

    python benchmarks/run_all.py [--only evaluation,retrieval] [--install] [--quick]
"""

from __future__ import annotations

from bench_rows import reexec_without_blas_overrides

if __name__ == "__main__":
    reexec_without_blas_overrides()

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench_machine import machine, versions
from bench_rows import Row, read_rows, table

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
TIMEOUT_S = 3 * 3600  # per benchmark: a hung one is killed and reported as failed


@dataclass(frozen=True)
class Bench:
    name: str  # for --only
    script: str
    args: tuple[str, ...]
    quick: tuple[str, ...]  # tiny sizes, to try the runner in a minute or two
    sizes: str  # said in the table's preamble and in results.json
    default: bool = True  # False: only with --only (not one of the seven parts)


BENCHES = (
    Bench(
        "evaluation",
        "evaluation_speed.py",
        ("--pairs", "100000", "--repeats", "3", "--peer-repeats", "2"),
        ("--pairs", "5000", "--repeats", "2"),
        "100,000 prediction pairs; ours median of 3 runs, the peer's loop (~20 s a run) of 2",
    ),
    Bench(
        "retrieval",
        "index_search.py",
        ("--size", "200000", "--hnsw-size", "10000", "--queries", "500", "--repeats", "3"),
        ("--size", "20000", "--hnsw-size", "4000", "--queries", "100", "--repeats", "2"),
        "200,000 x 768 references (HNSW: 10,000), 500 queries; searches median of 3",
    ),
    Bench(
        "rerank",
        "rerank_speed.py",
        ("--queries-k20", "300", "--queries-k100", "100"),
        ("--queries-k20", "30", "--queries-k100", "10"),
        "300 queries at k = 20, 100 at k = 100; median over queries",
    ),
    Bench(
        "geocoding",
        "reverse_geocode.py",
        ("--points", "1000000", "--repeats", "2"),
        ("--points", "50000", "--repeats", "1"),
        "1,000,000 points per workload, median of 2 runs",
    ),
    Bench(
        "embedding",
        "embedding_throughput.py",
        ("--repeats", "3", "--large-repeats", "1", "--images", "256"),
        ("--repeats", "1", "--images", "64", "--no-large"),
        "batch 32; demo tower and ViT-B-32 median of 3 batches, ViT-L-14 one batch; "
        "256 demo PNGs for the features path",
    ),
    Bench(
        "pipeline",
        "pipeline_timing.py",
        ("--noop-repeats", "3"),
        ("--noop-repeats", "1"),
        "the demo itself, once; incremental: 2 eps changes, median; no-op: median of 3",
    ),
    Bench(
        "lmm",
        "lmm_client.py",
        ("--repeats", "2"),
        ("--repeats", "1", "--per-level-s", "3"),
        "15 / 64 / 256 requests at c = 1 / 8 / 32; median of 2 rounds",
    ),
    Bench(
        "memory",
        "memory_growth.py",
        (),
        ("--quick",),
        "see benchmarks/memory_growth.py: three sizes per curve, one child process each",
    ),
    Bench(
        "predict",
        "predict_cold_start.py",
        ("--repeats", "3"),
        ("--repeats", "1"),
        "one demo validation photo, `geoloc predict --json`, 3 fresh processes (median)",
    ),
    Bench(
        "segmentation",
        "segmentation_throughput.py",
        ("--demo-images", "256", "--segformer-images", "8"),
        ("--demo-images", "64", "--segformer-images", "2"),
        "256 demo images, 8 through a random SegFormer-B0 at 512 px",
        default=False,
    ),
    Bench(
        "decoding",
        "decode_workers.py",
        ("--images", "400", "--repeats", "3"),
        ("--images", "64", "--repeats", "1", "--identity-images", "32"),
        "400 generated 500x375 JPEGs (q90) to 224 px, 1 vs 2 worker processes, median of 3; "
        "features of 96 with the demo tower",
        default=False,
    ),
    Bench(
        "ui",
        "ui_follow.py",
        (),
        (),
        "`make ui` on a copy of the demo project, one eps edit followed to a fresh graph",
        default=False,
    ),
)


@dataclass
class Outcome:
    name: str
    script: str
    args: list[str]
    returncode: int
    wall_s: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    sizes: str


def run_one(bench: Bench, quick: bool, install: bool, folder: Path) -> tuple[Outcome, list[Row]]:
    """One benchmark in a child process; its rows, or one row saying that it failed."""
    args = list(bench.quick if quick else bench.args)
    if bench.name == "pipeline" and install:
        args.append("--install")
    out = folder / f"{bench.name}.json"
    command = [sys.executable, str(HERE / bench.script), *args, "--json", str(out)]
    print(f"\n=== {bench.script} {' '.join(args)}", flush=True)
    load_before = os.getloadavg()
    start = time.perf_counter()
    try:
        returncode = subprocess.run(command, cwd=HERE.parent, timeout=TIMEOUT_S).returncode
    except subprocess.TimeoutExpired:
        returncode = -9
    wall = time.perf_counter() - start
    outcome = Outcome(
        bench.name,
        bench.script,
        args,
        returncode,
        wall,
        load_before,
        os.getloadavg(),
        f"quick: {' '.join(args)}" if quick else bench.sizes,
    )
    print(f"=== {bench.script}: {wall:.0f} s, exit {returncode}", flush=True)
    if returncode != 0 or not out.is_file():
        failed = Row("!", f"{bench.script} failed (exit {returncode})", "—", met="NO")
        return outcome, [failed]
    rows, _ = read_rows(out)
    return outcome, rows


def section_order(row: Row) -> tuple[int, str]:
    head = row.section.split(" ", 1)[0]
    return (int(head) if head.isdigit() else 99, row.section)


def summary(rows: Sequence[Row]) -> str:
    goals = [r for r in rows if r.met in ("yes", "NO")]
    missed = [r for r in goals if r.met == "NO"]
    return f"{len(goals) - len(missed)} of {len(goals)} goals met" + (
        "; missed: " + "; ".join(r.what for r in missed) if missed else ""
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [b.name for b in BENCHES]
    parser.add_argument(
        "--only", help=f"comma-separated subset of {','.join(names)} (segmentation: only so)"
    )
    parser.add_argument("--skip", help="comma-separated benchmarks to leave out")
    parser.add_argument("--install", action="store_true", help="pipeline: time `make install`")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to try the runner")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON file to write")
    args = parser.parse_args(argv)
    chosen = set(args.only.split(",")) if args.only else {b.name for b in BENCHES if b.default}
    chosen -= set(args.skip.split(",")) if args.skip else set()
    unknown = chosen - set(names)
    if unknown:
        parser.error(f"unknown benchmarks {sorted(unknown)}; choose from {names}")

    started = datetime.now(UTC)
    start = time.perf_counter()
    outcomes: list[Outcome] = []
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="geoloc-bench-") as tmp:
        for bench in BENCHES:
            if bench.name in chosen:
                outcome, bench_rows = run_one(bench, args.quick, args.install, Path(tmp))
                outcomes.append(outcome)
                rows += bench_rows
    total = time.perf_counter() - start
    rows.sort(key=section_order)
    markdown = table(rows, with_section=True)
    verdicts = summary(rows)
    print(f"\n## Performance ({'quick sizes' if args.quick else 'make bench'})\n")
    print(markdown)
    print(f"\n{verdicts}")
    print(f"total wall time {total / 60:.1f} min; " + ", ".join(
        f"{o.name} {o.wall_s:.0f} s" for o in outcomes
    ))
    payload = {
        "generated": started.isoformat(timespec="seconds"),
        "command": "python benchmarks/run_all.py " + " ".join(argv or sys.argv[1:]),
        "quick": args.quick,
        "total_s": total,
        "machine": machine(),
        "versions": versions(),
        "summary": verdicts,
        "benchmarks": [asdict(o) for o in outcomes],
        "rows": [asdict(r) for r in rows],
        "table_markdown": markdown,
    }
    args.out.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(o.returncode == 0 for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
