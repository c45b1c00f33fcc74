"""Embedding throughput: images per second of the frozen image tower, against its FLOP bound.

For the demo backbone (params.yaml `backbone.architecture`, 64 px) and for random-initialised
open_clip ViT-B-32 and ViT-L-14 (224 px; no pretrained weights can be downloaded here, and
weights do not change the arithmetic), at batch 32 on CPU:
- model: `backbone_outputs` (what the features step runs per batch: the tower, the 4 x 4
  token pooling and projection) on ready-made normalised pixels;
- bound: the tower's FLOPs per image counted by torch.utils.flop_counter.FlopCounterMode,
  divided by this machine's measured float32 torch matmul rate. No implementation of the same
  arithmetic runs faster, so the ratio says how much of the machine the tower uses.

For the demo backbone the whole features path is also timed (`extract_features` over real demo
world PNGs: decode, resize, normalise, tower, fp16 copy) and split into its parts, and the tower
is timed at 1 and at all threads: that is the profile that says what limits it when it is far
from its bound (decoding, resizing, threads, or the tower's small matrices).

    python benchmarks/embedding_throughput.py [--repeats 3] [--large-repeats 1] [--images 512]

Not a test: it prints numbers and ratios.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from bench_machine import torch_matmul_gflops
from bench_rows import NONE, Row, bench_parser, print_and_write, timed, verdict
from demo_views import repeated_views
from torch.utils.flop_counter import FlopCounterMode

from geoloc_core.encoders.backbone import backbone_outputs
from geoloc_core.encoders.clip_towers import ClipTowers, TowerSpec, build_clip, freeze
from geoloc_core.params import load_params
from geoloc_core.training.feature_extraction import WorkItem, extract_features

SECTION = "4 embedding"
BATCH = 32
GOAL_DEMO_BOUND = 3.0
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class TowerResult:
    architecture: str
    image_size: int
    gflop_per_image: float
    timing_s: tuple[float, ...]  # per batch of BATCH

    @property
    def images_per_s(self) -> float:
        return BATCH / float(np.median(self.timing_s))


def demo_architecture() -> tuple[str, int]:
    params = load_params(REPO)
    return params["backbone"]["architecture"], int(params["features"]["token_grid"])


def tower(architecture: str) -> ClipTowers:
    torch.manual_seed(0)
    return freeze(build_clip(TowerSpec(architecture, None)))


def gflop_per_image(towers: ClipTowers, token_grid: int) -> float:
    """FLOPs of one image through `backbone_outputs`, counted in train mode: in eval mode
    nn.MultiheadAttention takes a fused fast path whose projections the counter cannot see."""
    pixels = torch.zeros(1, 3, towers.image_size, towers.image_size)
    visual = towers.model.visual
    visual.train()
    try:
        with FlopCounterMode(display=False) as counter:
            backbone_outputs(visual, pixels, token_grid)
    finally:
        visual.eval()
    return counter.get_total_flops() / 1e9


def time_tower(
    towers: ClipTowers,
    token_grid: int,
    repeats: int,
    warmup_batch: int = BATCH,
    batches_per_run: int = 1,
) -> tuple[float, ...]:
    """Seconds per batch of BATCH, one sample per run of batches_per_run batches: a small
    tower's single batch lasts milliseconds, too short to time on a shared machine."""
    pixels = torch.randn(BATCH, 3, towers.image_size, towers.image_size)
    backbone_outputs(towers.model.visual, pixels[:warmup_batch], token_grid)

    def batches() -> None:
        for _ in range(batches_per_run):
            backbone_outputs(towers.model.visual, pixels, token_grid)

    _, timing = timed(batches, repeats)
    return tuple(t / batches_per_run for t in timing.samples)


def measure_tower(
    architecture: str, token_grid: int, repeats: int, warmup_batch: int, batches_per_run: int = 1
) -> tuple[TowerResult, ClipTowers]:
    towers = tower(architecture)
    flops = gflop_per_image(towers, token_grid)
    samples = time_tower(towers, token_grid, repeats, warmup_batch, batches_per_run)
    return TowerResult(architecture, towers.image_size, flops, samples), towers


def path_profile(
    towers: ClipTowers, items: Sequence[WorkItem], token_grid: int, repeats: int
) -> dict[str, float]:
    """Seconds per image of the whole features path and of each of its parts (medians)."""
    chunks = [items[s : s + BATCH] for s in range(0, len(items), BATCH)]

    def each_chunk(work: Callable[[Sequence[WorkItem]], object]) -> float:
        _, timing = timed(lambda: [work(chunk) for chunk in chunks], repeats)
        return timing.median / len(items)

    def decode(chunk: Sequence[WorkItem]) -> np.ndarray:
        return towers.transform.load_batch([i.id for i in chunk], [i.image for i in chunk])[0]

    decoded = [decode(chunk) for chunk in chunks]
    normalised = [towers.transform.normalize(d) for d in decoded]
    by_id = {id(c): k for k, c in enumerate(chunks)}
    visual = towers.model.visual
    parts = {
        "whole path": each_chunk(lambda c: extract_features(towers, c, token_grid, BATCH)),
        "decode+resize": each_chunk(decode),
        "normalise": each_chunk(
            lambda c: towers.transform.normalize(decoded[by_id[id(c)]])
        ),
        "tower": each_chunk(
            lambda c: backbone_outputs(visual, normalised[by_id[id(c)]], token_grid)
        ),
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    parts["tower, 1 thread"] = each_chunk(
        lambda c: backbone_outputs(visual, normalised[by_id[id(c)]], token_grid)
    )
    torch.set_num_threads(threads)
    return parts


def top_ops(towers: ClipTowers, token_grid: int, count: int = 4) -> str:
    """Where the tower's time goes, from torch.profiler over one batch: the top ops' shares."""
    from torch.profiler import ProfilerActivity, profile

    pixels = torch.randn(BATCH, 3, towers.image_size, towers.image_size)
    backbone_outputs(towers.model.visual, pixels, token_grid)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        backbone_outputs(towers.model.visual, pixels, token_grid)
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return ", ".join(
        f"{e.key.removeprefix('aten::')} {100 * e.self_cpu_time_total / total:.0f}%"
        for e in events[:count]
    )


def tower_row(result: TowerResult, rate: float, goal: str, met: str, note: str = "") -> Row:
    bound = rate / result.gflop_per_image  # images per second at the matmul rate
    ratio = bound / result.images_per_s
    return Row(
        SECTION,
        f"images/s, batch {BATCH}, {result.architecture} @{result.image_size}px "
        f"({result.gflop_per_image:.3g} GFLOP/img){note}",
        f"{result.images_per_s:,.1f}",
        f"{bound:,.1f} (bound at {rate:.0f} GFLOP/s)",
        f"{ratio:.2f}x of bound",
        goal,
        met,
        {
            "architecture": result.architecture,
            "image_size": result.image_size,
            "gflop_per_image": result.gflop_per_image,
            "images_per_s": result.images_per_s,
            "bound_images_per_s": bound,
            "ratio_to_bound": ratio,
            "batch_s_runs": list(result.timing_s),
        },
    )


def run(
    repeats: int = 3, large_repeats: int = 1, images: int = 512, large: bool = True
) -> list[Row]:
    threads = torch.get_num_threads()
    rate = torch_matmul_gflops()
    torch.set_num_threads(1)
    rate_one = torch_matmul_gflops()
    torch.set_num_threads(threads)
    architecture, token_grid = demo_architecture()
    demo, demo_towers = measure_tower(architecture, token_grid, repeats, BATCH, batches_per_run=16)
    demo_ratio = (rate / demo.gflop_per_image) / demo.images_per_s
    goal = f"<= {GOAL_DEMO_BOUND:g}x of bound"
    rows = [
        Row(
            SECTION,
            f"torch float32 matmul rate, {threads} threads (2048², best of 10)",
            f"{rate:.1f} GFLOP/s",
            f"1 thread: {rate_one:.1f} GFLOP/s",
            f"{rate / rate_one:.2f}x from {threads} threads",
            values={
                "torch_matmul_gflops": rate,
                "threads": threads,
                "torch_matmul_gflops_1_thread": rate_one,
            },
        ),
        tower_row(demo, rate, goal, verdict(demo_ratio, GOAL_DEMO_BOUND, False), ", tower"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        views = repeated_views(Path(tmp), 32, images)
        items = [WorkItem(view_id, image) for view_id, image, _ in views]
        parts = path_profile(demo_towers, items, token_grid, repeats)
    ops = top_ops(demo_towers, token_grid)
    bound_s = demo.gflop_per_image / rate
    whole = parts["whole path"]
    rows.append(
        Row(
            SECTION,
            f"images/s, demo features path (extract_features over {images} demo PNGs)",
            f"{1 / whole:,.1f}",
            f"{1 / bound_s:,.1f} (tower bound)",
            f"{whole / bound_s:.2f}x of bound",
            goal,
            verdict(whole / bound_s, GOAL_DEMO_BOUND, False),
            {"images": images, **{f"{k}_ms_per_image": 1e3 * v for k, v in parts.items()}},
        )
    )
    profile = ", ".join(
        f"{k} {1e3 * v:.3f}" for k, v in parts.items() if k not in ("whole path",)
    )
    bound_one_s = demo.gflop_per_image / rate_one
    one = parts["tower, 1 thread"]
    rows.append(
        Row(
            SECTION,
            "demo path profile, ms/image",
            profile,
            f"bound {1e3 * bound_s:.3f} ({threads} threads), {1e3 * bound_one_s:.3f} (1 thread)",
            f"{threads} threads vs 1: {one / parts['tower']:.2f}x faster; 1 thread "
            f"{one / bound_one_s:.2f}x of its bound; tower ops: {ops}",
            "say what limits it",
            NONE,
            {
                "bound_ms_per_image": 1e3 * bound_s,
                "bound_1_thread_ms_per_image": 1e3 * bound_one_s,
                "tower_top_ops": ops,
            },
        )
    )
    del demo_towers
    if large:
        for name, count in (("ViT-B-32", repeats), ("ViT-L-14", large_repeats)):
            start = time.perf_counter()
            result, towers = measure_tower(name, token_grid, count, warmup_batch=2)
            del towers
            print(f"{name}: {time.perf_counter() - start:.0f} s including build and FLOP count")
            rows.append(tower_row(result, rate, "report", NONE, ", random init"))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--repeats", type=int, default=3, help="runs of the demo and ViT-B-32")
    parser.add_argument("--large-repeats", type=int, default=1, help="runs of ViT-L-14")
    parser.add_argument("--images", type=int, default=512, help="demo PNGs for the path")
    parser.add_argument("--no-large", action="store_true", help="skip ViT-B-32 and ViT-L-14")
    args = parser.parse_args(argv)
    rows = run(args.repeats, args.large_repeats, args.images, not args.no_large)
    print_and_write(f"Embedding throughput, batch {BATCH}, CPU", rows, args.json)


if __name__ == "__main__":
    main()
