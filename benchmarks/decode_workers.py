"""Decode + preprocess of 500x375 JPEGs with 1 vs 2 worker processes, side by side in one run.

The backbone-features path prepares images in worker processes (geoloc_core/data/loader.py):
each worker runs the step's own per-image function (images.load_rgb at the tower's size) and
its batch function (images.normalize_pixels) on whole batches. This measures images/s through
that path with 1 and 2 workers (and in the calling process, for reference), alternating the
runs so that a neighbour's load hits both alike, and checks that the features computed with
2 workers are byte-identical to those computed with 1.

    python benchmarks/decode_workers.py [--images 1200] [--repeats 3]

The photos are generated here (sky gradient, buildings, foliage-like noise, JPEG quality 90:
~60-90 KB each, like a Flickr photo at 500 px). Not a test: it prints numbers and ratios.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch
from bench_rows import Row, bench_parser, print_and_write, verdict
from PIL import Image, ImageFilter

from geoloc_core.data.images import load_rgb, normalize_pixels
from geoloc_core.data.loader import LoaderOptions, chunks, decoded_batches
from geoloc_core.encoders.clip_towers import TowerSpec, build_clip, freeze
from geoloc_core.training.feature_extraction import WorkItem, extract_features

SECTION = "decoding"
WIDTH, HEIGHT = 500, 375
SIZE = 224  # ViT-L/14's input side
BATCH = 32
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
GOAL = 1.7


def photo(rng: np.random.Generator) -> Image.Image:
    """A street-scene-like picture: a sky gradient, a ground, blocks of buildings with
    windows, and smoothed noise (foliage, texture) so that JPEG has real detail to code."""
    y = np.linspace(0.0, 1.0, HEIGHT)[:, None, None]
    sky = np.array(rng.uniform(120, 230, 3)) * (1 - 0.4 * y)
    picture = np.broadcast_to(sky, (HEIGHT, WIDTH, 3)).copy()
    horizon = int(rng.uniform(0.45, 0.7) * HEIGHT)
    picture[horizon:] = rng.uniform(40, 140, 3)
    for _ in range(int(rng.integers(4, 10))):
        x0, w = int(rng.integers(0, WIDTH - 40)), int(rng.integers(30, 140))
        top = int(rng.integers(40, horizon))
        picture[top:horizon, x0 : x0 + w] = rng.uniform(50, 220, 3)
        for wy in range(top + 6, horizon - 8, 14):
            for wx in range(x0 + 4, min(x0 + w, WIDTH) - 6, 12):
                picture[wy : wy + 7, wx : wx + 5] = rng.uniform(10, 90)
    noise = rng.normal(0, 28, (HEIGHT, WIDTH, 3))
    image = Image.fromarray(np.clip(picture + noise, 0, 255).astype(np.uint8))
    return image.filter(ImageFilter.GaussianBlur(0.8))


def make_photos(folder: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for number in range(count):
        path = folder / f"photo-{number:05d}.jpg"
        photo(rng).save(path, quality=90)
        paths.append(path)
    return paths


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the DataLoader's workers are
    joined when a pass ends)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def decode_all(paths: Sequence[Path], workers: int | None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) to decode + preprocess every photo (workers None: in this
    process)."""
    ids = [p.stem for p in paths]
    options = LoaderOptions() if workers is None else LoaderOptions(workers=workers, prefetch=4)
    start, cpu = time.perf_counter(), cpu_seconds()
    seen = 0
    for batch in decoded_batches(
        chunks(ids, paths, BATCH),
        partial(load_rgb, size=SIZE),
        partial(normalize_pixels, mean=list(CLIP_MEAN), std=list(CLIP_STD)),
        options,
    ):
        assert not batch.failures, batch.failures
        seen += len(batch.positions)
    assert seen == len(paths)
    return time.perf_counter() - start, cpu_seconds() - cpu


def features_identical(paths: Sequence[Path]) -> tuple[bool, str, str]:
    """The demo tower (random weights) over the photos with 1 and with 2 workers."""
    torch.manual_seed(0)
    towers = freeze(build_clip(TowerSpec("geoloc-demo-vit-tiny", None)))
    items = [WorkItem(p.stem, p) for p in paths]
    one = extract_features(towers, items, 4, BATCH, loader=LoaderOptions(workers=1))
    two = extract_features(towers, items, 4, BATCH, loader=LoaderOptions(workers=2))
    same = (
        one.ids == two.ids
        and one.pooled.tobytes() == two.pooled.tobytes()
        and one.tokens.tobytes() == two.tokens.tobytes()
    )
    return same, one.digest(), two.digest()


def main(argv: Sequence[str] | None = None) -> None:
    parser = bench_parser(__doc__)
    # Steady-state throughput, as a step over thousands of images sees it: at 400 images (13
    # batches of 32) two workers share 7 + 6 batches, so the pass ends with one worker idle for
    # a batch, and the workers' start is paid per pass; that alone held the ratio to ~1.6x.
    parser.add_argument("--images", type=int, default=1200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--identity-images", type=int, default=96)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="decode-workers-") as scratch:
        paths = make_photos(Path(scratch), args.images)
        kb = sum(p.stat().st_size for p in paths) / len(paths) / 1024
        decode_all(paths[:BATCH], 2)  # warm the page cache and the fork path
        runs: dict[str, list[float]] = {"in process": [], "1 worker": [], "2 workers": []}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        for repeat in range(args.repeats):
            order = [(None, "in process"), (1, "1 worker"), (2, "2 workers")]
            for workers, name in order if repeat % 2 == 0 else order[::-1]:
                wall, used = decode_all(paths, workers)
                runs[name].append(wall)
                cpu[name].append(used)
        same, digest_one, digest_two = features_identical(paths[: args.identity_images])
    load_after = os.getloadavg()
    median = {name: float(np.median(samples)) for name, samples in runs.items()}
    rate = {name: args.images / seconds for name, seconds in median.items()}
    speedup = rate["2 workers"] / rate["1 worker"]
    ms_per_image = 1000 * median["in process"] / args.images
    cpu_ms = {name: 1000 * float(np.median(v)) / args.images for name, v in cpu.items()}
    values = {
        "images": args.images,
        "jpeg_kb_mean": kb,
        "ms_per_image_in_process": ms_per_image,
        "runs_s": runs,
        "cpu_s": cpu,
        "cpu_ms_per_image": cpu_ms,
        "images_per_s": rate,
        "speedup_2_vs_1": speedup,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "cpus": os.cpu_count(),
    }
    rows = [
        Row(
            SECTION,
            f"decode + preprocess {args.images} {WIDTH}x{HEIGHT} JPEGs (q90, {kb:.0f} KB) to "
            f"{SIZE} px: 2 workers vs 1 (load avg {load_before[0]:.1f} -> {load_after[0]:.1f})",
            f"{rate['2 workers']:.0f} img/s",
            f"{rate['1 worker']:.0f} img/s (in process: {rate['in process']:.0f}, "
            f"{ms_per_image:.1f} ms/img; CPU ms/img in process / 1 / 2 workers: "
            f"{cpu_ms['in process']:.1f} / {cpu_ms['1 worker']:.1f} / {cpu_ms['2 workers']:.1f})",
            f"{speedup:.2f}x",
            f">= {GOAL}x",
            verdict(speedup, GOAL),
            values,
        ),
        Row(
            SECTION,
            f"features of {args.identity_images} JPEGs (demo tower) with 2 workers vs 1",
            digest_two[:12],
            digest_one[:12],
            "identical" if same else "DIFFERENT",
            "byte-identical",
            "yes" if same else "NO",
            {"digest_1_worker": digest_one, "digest_2_workers": digest_two},
        ),
    ]
    print_and_write("Decoding in worker processes", rows, args.json)


if __name__ == "__main__":
    main()
