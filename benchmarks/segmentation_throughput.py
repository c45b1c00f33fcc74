"""Segmentation cache throughput on this machine, and what it projects to for MP16 (4.7M images).

Measures images per second through the whole shard path (decode, provider, noise, histogram,
downsampling, part files, shard assembly) for the demo provider and for a random-initialised
SegFormer-B0 at 512 px (the same architecture as nvidia/mit-b0, loaded through from_pretrained
from a local folder); bytes per image in the cache; and random-access read speed of the reader.

    python benchmarks/segmentation_throughput.py [--demo-images 512] [--segformer-images 16]

Not a test: it prints numbers and ratios.
"""

from __future__ import annotations

import tempfile
import time
import zlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from bench_rows import Row, bench_parser, print_and_write
from demo_views import repeated_views

from geoloc_core.segmentation.cache import SegmentationCache
from geoloc_core.segmentation.providers import make_provider
from geoloc_core.segmentation.providers.base import WorkItem
from geoloc_core.segmentation.settings import SegmentationSettings
from geoloc_core.segmentation.shard import ShardOutcome, compute_shard

MP16_IMAGES = 4_700_000
SECTION = "8 segmentation"
SETTINGS = {
    "provider": "demo",
    "model_id": "nvidia/segformer-b5-finetuned-ade-640-640",
    "input_resolution": 512,
    "output_resolution": 64,
    "label_noise": 0.0,
    "label_noise_unit": "pixel",
    # the views are repeated under new ids, whose conditions the world does not know; the
    # degradation itself is one relabel per class region, small beside decoding
    "condition_errors": False,
    "seed": 0,
    "n_shards": 1,
    "batch_size": 64,
    "device": "auto",
    "num_threads": 2,
    "progress": False,
}


def segformer_b0_checkpoint(folder: Path) -> Path:
    """SegFormer-B0 (transformers' default SegformerConfig is mit-b0) with 150 labels."""
    from transformers import (
        SegformerConfig,
        SegformerForSemanticSegmentation,
        SegformerImageProcessor,
    )

    SegformerForSemanticSegmentation(SegformerConfig(num_labels=150)).save_pretrained(folder)
    SegformerImageProcessor().save_pretrained(folder)
    return folder


def timed_shard(
    items: Sequence[WorkItem], settings: SegmentationSettings, folder: Path
) -> tuple[ShardOutcome, float]:
    """(outcome, seconds of computing, without loading the provider)."""
    provider = make_provider(settings)
    start = time.perf_counter()
    outcome = compute_shard(
        items, settings, 0, folder / "cache", folder / "parts", lambda: provider, log=lambda m: None
    )
    return outcome, time.perf_counter() - start


def read_speed(cache_dir: Path, batch: int = 256, rounds: int = 20) -> float:
    cache = SegmentationCache(cache_dir)
    ids = cache.ids()
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(rounds):
        cache.load([ids[i] for i in rng.integers(0, len(ids), size=batch)])
    return batch * rounds / (time.perf_counter() - start)


def report(name: str, images: int, seconds: float) -> float:
    rate = images / seconds
    hours = MP16_IMAGES / rate / 3600
    print(f"{name:<28} {rate:10.1f} images/s   4.7M images: {hours:10.1f} h on this machine")
    return rate


def run(demo_images: int = 512, segformer_images: int = 16, threads: int = 2) -> list[Row]:
    base = SegmentationSettings.from_section({**SETTINGS, "num_threads": threads})
    torch.set_num_threads(threads)
    device = "cuda (fp16)" if torch.cuda.is_available() else f"cpu ({threads} threads)"
    print(f"device: {device}; output label maps {base.output_resolution}x{base.output_resolution}")

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        views = repeated_views(tmp_path / "world", 24, demo_images)
        items = [WorkItem(view_id, image, label) for view_id, image, label in views]
        demo, demo_seconds = timed_shard(items, base, tmp_path / "demo")
        demo_rate = report("demo provider", len(items), demo_seconds)

        checkpoint = segformer_b0_checkpoint(tmp_path / "segformer-b0")
        segformer_settings = replace(
            base, provider="segformer", model_id=str(checkpoint), batch_size=8
        )
        few = items[:segformer_images]
        _, seg_seconds = timed_shard(few, segformer_settings, tmp_path / "segformer")
        seg_rate = report("SegFormer-B0 @512 (random)", len(few), seg_seconds)
        print(f"demo / SegFormer-B0 speed ratio: {demo_rate / seg_rate:.0f}x")

        per_image = demo.bytes / demo.images
        compressed = len(zlib.compress(demo.path.read_bytes(), 6)) / demo.images
        print(
            f"cache: {per_image:.0f} bytes/image (label map {base.output_resolution**2} B + "
            f"histogram 600 B + id); 4.7M images: {per_image * MP16_IMAGES / 1e9:.1f} GB"
        )
        print(
            f"  (zlib would store {compressed:.0f} bytes/image, {per_image / compressed:.1f}x "
            "smaller, at the cost of memory-mapped random access)"
        )
        reads = read_speed(demo.path.parent)
        print(f"reader: {reads:.0f} images/s in random batches of 256")
    hours = {name: MP16_IMAGES / rate / 3600 for name, rate in (("demo", demo_rate),
                                                                ("segformer", seg_rate))}
    return [
        Row(
            SECTION,
            f"segmentation images/s, whole shard path: demo provider ({demo_images}) vs "
            f"random SegFormer-B0 @512 ({segformer_images}), {device}",
            f"{demo_rate:,.1f}",
            f"{seg_rate:,.2f}",
            f"{demo_rate / seg_rate:.0f}x",
            f"report (MP16 at SegFormer-B0's rate: {hours['segformer']:,.0f} h here)",
            values={"demo_per_s": demo_rate, "segformer_per_s": seg_rate, "mp16_hours": hours},
        ),
        Row(
            SECTION,
            "segmentation cache bytes/image (zlib would give) and reader images/s",
            f"{per_image:.0f}",
            f"{compressed:.0f}",
            f"reader {reads:,.0f}/s",
            f"report (MP16: {per_image * MP16_IMAGES / 1e9:.1f} GB)",
            values={"bytes_per_image": per_image, "zlib_bytes": compressed, "reads_per_s": reads},
        ),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--demo-images", type=int, default=512)
    parser.add_argument("--segformer-images", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    rows = run(args.demo_images, args.segformer_images, args.threads)
    print_and_write("Segmentation cache throughput", rows, args.json)


if __name__ == "__main__":
    main()
