"""Items per second of each stage: measured on this machine where benchmarks/results.json has
the number (`make bench`), else an assumption stated with the rate, for a GPU that cannot be
measured here.

Decoding bounds every stage that reads pixels: 4.8 ms per 500x375 JPEG on one core (issue 23's
measurement: decode, resize, centre crop), so `loader.workers` processes feed at most
workers / 4.8 ms images per second whatever the GPU does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = "benchmarks/results.json"
DECODE_S_PER_JPEG = 0.0048  # one 500x375 JPEG, one core (issue 23)
# Assumptions for one GPU, not measurable on this machine (stated in every estimate using them)
GPU_VIT_L14_IMAGES_S = 1000.0  # ViT-L/14 fp16 forward at batch 256 (issue 23: "a thousand or more")
GPU_SEGFORMER_IMAGES_S = 100.0  # SegFormer-B5 / Mask2Former at 640 px, fp16
GPU_TRAIN_ITEMS_S = 20_000.0  # heads over cached features, batch 256 (item-epochs per second)
LMM_REQUEST_S = 1.0  # one answer from a hosted OpenAI-compatible model


@dataclass(frozen=True)
class Rate:
    per_second: float | None  # None: nothing to project from
    basis: str


class Measurements:
    """The rows of benchmarks/results.json, searched by what they measured."""

    def __init__(self, root: Path) -> None:
        path = Path(root) / RESULTS
        self.rows: list[dict[str, Any]] = []
        if path.is_file():
            self.rows = json.loads(path.read_text()).get("rows", [])

    def find(self, section: str, needle: str) -> dict[str, Any] | None:
        for row in self.rows:
            if row["section"].startswith(section) and needle in row["what"]:
                return row["values"]
        return None

    def demo_stage_seconds(self) -> dict[str, float]:
        """Seconds per DVC stage of a fresh `make demo` on this machine."""
        values = self.find("5", "pipeline s: fresh clone")
        return dict(values.get("stage_s", {})) if values else {}

    def tower_images_s(self, architecture: str) -> float | None:
        """Images/s of an architecture's image tower on this machine's CPU (batch 32)."""
        for row in self.rows:
            if row["section"].startswith("4") and row["values"].get("architecture") == architecture:
                return float(row["values"]["images_per_s"])
        return None

    def query_seconds(self) -> float | None:
        """Seconds per benchmark query: two IVF-PQ searches (similar and dissimilar, 500
        queries over 200k) and the batched re-rank at k = 20."""
        search = self.find("2", "flat search s, 500 queries")
        rerank = self.find("2", "re-rank ms/query, k=20, rerank_batch")
        if not search or not rerank:
            return None
        return 2 * search["ivfpq_search_s"] / 500 + rerank["ours_ms"] / 1000

    def ivfpq_build_per_s(self) -> float | None:
        values = self.find("2", "build s: IVF-PQ")
        return 200_000 / values["ivfpq_build_s"] if values else None


def decode_rate(workers: int) -> float:
    return max(1, workers) / DECODE_S_PER_JPEG


def gpu_images_rate(model_rate: float, model: str, workers: int) -> Rate:
    feed = decode_rate(workers)
    rate = min(model_rate, feed)
    bound = "decoding" if feed < model_rate else model
    return Rate(
        rate,
        f"GPU {model} {model_rate:.0f} img/s (assumed), decoding "
        f"{max(1, workers)} x {1 / DECODE_S_PER_JPEG:.0f} img/s: {bound} bounds it",
    )
