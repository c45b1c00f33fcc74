"""Bytes per item of each stage's outputs: measured on the demo's outputs, scaled by the shapes
of the settings in force.

Each entry is a formula of the shapes (the array bytes a stage stores per item) times the
overhead measured on the demo (file formats, ids, compression): measured = the stage's output
bytes on disk after `make demo` / its items; see MEASURED for the numbers and where they come
from. A stage whose outputs do not grow with the items (the model) has a fixed size.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geoloc_core.models.variants import retrieval_parts

FP16, FP32, UINT8 = 2, 4, 1
ADE20K_CLASSES = 150


@dataclass(frozen=True)
class Measured:
    """The demo's own number for a stage: output bytes per item, and the formula's value at
    the demo's shapes (their ratio is the overhead a full-size output keeps)."""

    bytes_per_item: float
    formula_at_demo: float
    source: str

    @property
    def overhead(self) -> float:
        return self.bytes_per_item / self.formula_at_demo


# Measured on the demo's outputs: the `size` DVC records for each output in dvc.lock (main
# 4d0b05d, a fresh `make demo`), over the items it holds: 2,600 images (2,100 reference +
# validation, 300 demo-street, 200 demo-unseen), 1,800 indexed reference rows, 800 queries
# (validation, demo-street, demo-unseen) of 20 + 20 candidates. The demo's shapes: backbone
# width 128, token grid 4, label maps 64 px, g3's 384-d retrieval vector, a flat index.
MEASURED: dict[str, Measured] = {
    "data": Measured(484_949 / 2_600, 484_949 / 2_600, "artifacts/manifests 484,949 B"),
    "texts": Measured(272_930 / 2_100, 272_930 / 2_100, "artifacts/texts 272,930 B"),
    "segmentation": Measured(
        12_255_548 / 2_600, UINT8 * 64**2 + FP32 * ADE20K_CLASSES, "artifacts/segmentation "
        "12,255,548 B"
    ),
    "features": Measured(
        11_528_412 / 2_600, FP16 * 128 * (1 + 4**2), "artifacts/features 11,528,412 B"
    ),
    "index": Measured(
        (1_444_978 + 2_826_192) / 1_800,
        FP16 * 384 + FP32 * 384,
        "artifacts/embeddings 1,444,978 B + artifacts/index 2,826,192 B",
    ),
    "per_query": Measured(
        (3_732_268 + 1_579_253 + 93_127 + 19_765 + 3_086 + 3_086 + 222_701) / 800,
        40,
        "artifacts/candidates, rerank, predictions, errors, lmm, lmm_reasoning, baselines "
        "5,653,286 B",
    ),
}

@dataclass(frozen=True)
class StageSize:
    stage: str
    bytes_per_item: float
    items: str  # which items it grows with: images | reference | indexed | queries
    basis: str


def backbone_dim(architecture: str) -> int:
    """The joint embedding width of an open_clip architecture, read from its JSON config (the
    project's or open_clip's) without importing open_clip (seconds)."""
    from geoloc_core.encoders.clip_towers import MODEL_CONFIG_DIR

    folders = [MODEL_CONFIG_DIR]
    spec = importlib.util.find_spec("open_clip")
    if spec is not None and spec.submodule_search_locations:
        folders.append(Path(next(iter(spec.submodule_search_locations))) / "model_configs")
    for folder in folders:
        config = folder / f"{architecture}.json"
        if config.is_file():
            return int(json.loads(config.read_text())["embed_dim"])
    raise ValueError(f"unknown open_clip architecture '{architecture}' (no config in {folders})")


def feature_bytes(dim: int, token_grid: int) -> float:
    """Pooled embedding + token_grid² pooled patch tokens, both at the joint width, in fp16."""
    return FP16 * dim * (1 + token_grid**2)


def segmentation_bytes(output_resolution: int) -> float:
    """The stored label map (uint8) and its class histogram (float32)."""
    return UINT8 * output_resolution**2 + FP32 * ADE20K_CLASSES


def retrieval_dim(params: dict[str, Any], dim: int) -> int:
    """The retrieval vector's width: the frozen embedding and image→text in the backbone's
    space, every trained GPS-side part at model.embed_dim."""
    parts = retrieval_parts(params["model"]["variant"], params["embeddings"]["parts"])
    backbone_space = {"frozen", "image_text"}
    return sum(dim if part in backbone_space else params["model"]["embed_dim"] for part in parts)


def index_bytes(params: dict[str, Any], width: int) -> float:
    """The stored fp16 embedding plus what the index keeps per vector."""
    index = params["index"]
    stored = FP16 * width
    if index["type"] == "ivfpq":
        kept = index["pq_m"] * index["pq_nbits"] / 8 + 8 + (FP16 * width if index["refine"] else 0)
    elif index["type"] == "hnsw":
        kept = FP32 * width + 2 * index["hnsw_m"] * 4
    else:
        kept = FP32 * width
    return stored + kept


def stage_sizes(params: dict[str, Any]) -> list[StageSize]:
    dim = backbone_dim(params["backbone"]["architecture"])
    width = retrieval_dim(params, dim)
    grid = params["features"]["token_grid"]
    resolution = params["segmentation"]["output_resolution"]
    candidates = params["retrieval"]["top_k"] + params["retrieval"]["dissimilar_k"]
    rows = [
        ("data", MEASURED["data"].bytes_per_item, "images", "manifest row"),
        ("texts", MEASURED["texts"].bytes_per_item, "reference", "place text row"),
        (
            "segmentation",
            segmentation_bytes(resolution) * MEASURED["segmentation"].overhead,
            "images",
            f"{resolution}² label map + 150 floats",
        ),
        (
            "features",
            feature_bytes(dim, grid) * MEASURED["features"].overhead,
            "images",
            f"fp16 {dim} x (1 + {grid}²)",
        ),
        (
            "index",
            index_bytes(params, width) * MEASURED["index"].overhead,
            "indexed",
            f"{width}-d fp16 embedding + {params['index']['type']} index",
        ),
        (
            "per_query",
            candidates * MEASURED["per_query"].overhead,
            "queries",
            f"{candidates} candidates (top_k + dissimilar_k) per query",
        ),
    ]
    return [StageSize(stage, bytes_, items, basis) for stage, bytes_, items, basis in rows]
