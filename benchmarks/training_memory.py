"""Training memory: peak RSS of one streamed epoch (train.order: shards) at 100k and 1M images.

Each size is one fresh child process that runs the real step
(`geoloc_core.steps.training.train_model`, params.yaml `model` / `train` with order: shards and
epochs: 1) on a synthetic project that memory_growth.write_training_inputs writes: a reference
manifest with a 1 % validation split, place texts (one caption per 20 images), a random demo
backbone and its features cache. Features are the demo's width (geoloc-demo-vit-tiny: 128-d
pooled + 16 tokens of 128, fp16: 4,352 B an image, 4.4 GB at 1M), in shards of MP16's size
(18,359 images, MP16 over the full profile's 256 shards). The whole epoch runs: every sample is
read by the stream, trained on once, and the reference set is embedded once more for the
validation. With --max-steps N the epoch trains on its first N batches only (a machine too
slow for a 1M epoch); the reader still reads every shard of the reference set, because the
validation at the end of the epoch embeds the whole reference set through the same stream,
and the plan and the epoch's order are made for the whole set before the first step. The
child resets its peak mark (VmHWM) after the imports, so the peak is the
step's own, and samples anonymous and file-backed memory on the side (memory_growth.child).

    python benchmarks/training_memory.py [--quick] [--batch-size N]

Acceptance (issue 23): peak RSS at 1M at most 1.2 x the peak at 100k. Not a test: it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from memory_growth import (  # noqa: E402
    MB,
    REPO,
    StatusSampler,
    peak_since_reset,
    reset_peak,
    write_training_inputs,
)

SECTION = "7 memory"
SIZES = (100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
GOAL = 1.2


def child(root: Path, out: Path, batch_size: int | None, max_steps: int | None) -> None:
    import yaml

    from geoloc_core.geo.metrics import DEFAULT_THRESHOLDS_KM
    from geoloc_core.paths import ProjectPaths
    from geoloc_core.steps.training import train_model

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    train = {**params["train"], "epochs": 1, "order": "shards"}
    if batch_size:
        train["batch_size"] = batch_size
    sampler = StatusSampler()
    baseline = sampler.read()
    reset = reset_peak()
    start = time.perf_counter()
    with sampler:
        result = train_model(
            ProjectPaths(root),
            params["model"],
            train,
            DEFAULT_THRESHOLDS_KM,
            fingerprint="bench",
            progress=False,
            max_steps_per_epoch=max_steps,
        )
    seconds = time.perf_counter() - start
    out.write_text(
        json.dumps(
            {
                "baseline": baseline["VmRSS"],
                "peak": peak_since_reset() if reset else sampler.peak["VmRSS"],
                "anon": sampler.peak["RssAnon"],
                "file": sampler.peak["RssFile"],
                "seconds": seconds,
                "trained_on": result["reference_images"],
                "batch_size": train["batch_size"],
                "max_steps": max_steps,
            }
        )
    )


def measure(size: int, folder: Path, batch_size: int | None, max_steps: int | None) -> dict:
    root = folder / f"train-{size}"
    root.mkdir(parents=True)
    started = time.perf_counter()
    shards = write_training_inputs(root, size)
    written = time.perf_counter() - started
    out = root / "memory.json"
    command = [sys.executable, __file__, "--child", str(root), str(out)]
    if batch_size:
        command += ["--batch-size", str(batch_size)]
    if max_steps:
        command += ["--max-steps", str(max_steps)]
    process = subprocess.Popen(command, cwd=REPO)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"training at {size:,}: the child failed")
    report = json.loads(out.read_text())
    report.update(size=size, shards=shards, process_maxrss=usage.ru_maxrss * 1024)
    print(
        f"{size:>9,} images ({shards} shards, inputs written in {written:.0f} s): step peak RSS "
        f"{report['peak'] / MB:,.0f} MiB (anon {report['anon'] / MB:,.0f}, file "
        f"{report['file'] / MB:,.0f}; after imports {report['baseline'] / MB:,.0f}), "
        f"{report['seconds']:.0f} s for the epoch, batch {report['batch_size']}, steps "
        f"{report['max_steps'] or 'all'}",
        flush=True,
    )
    return report


def run(quick: bool, batch_size: int | None, max_steps: int | None) -> list:
    from bench_rows import Row

    sizes = QUICK_SIZES if quick else SIZES
    points = []
    with tempfile.TemporaryDirectory(prefix="geoloc-train-memory-") as tmp:
        for size in sizes:
            points.append(measure(size, Path(tmp), batch_size, max_steps))
            shutil.rmtree(Path(tmp) / f"train-{size}")  # the disk for the next: 4.4 GB at 1M
    small, large = points
    ratio = large["peak"] / small["peak"]
    print(f"peak RSS {large['size']:,} / {small['size']:,}: {ratio:.3f} (goal <= {GOAL})")
    return [
        Row(
            SECTION,
            f"step peak RSS MiB, streamed training epoch (order: shards), at "
            f"{small['size']:,} / {large['size']:,} images",
            f"{small['peak'] / MB:,.0f} / {large['peak'] / MB:,.0f}",
            f"anon {small['anon'] / MB:,.0f} / {large['anon'] / MB:,.0f}",
            f"{ratio:.3f}x",
            f"<= {GOAL}x",
            "yes" if ratio <= GOAL else "NO",
            {"points": points, "ratio": ratio},
        )
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k, to try the script")
    parser.add_argument("--batch-size", type=int, help="instead of params.yaml's train")
    parser.add_argument(
        "--max-steps",
        type=int,
        help="train on the epoch's first N batches only; the validation still streams every "
        "reference through the same reader (see the docstring)",
    )
    parser.add_argument("--json", help="write the rows here (for benchmarks/run_all.py)")
    parser.add_argument("--child", nargs=2, metavar=("ROOT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.batch_size, args.max_steps)
        return
    from bench_rows import print_and_write

    rows = run(args.quick, args.batch_size, args.max_steps)
    print_and_write("Training memory: one streamed epoch per size", rows, args.json)


if __name__ == "__main__":
    main()
