"""Per stage: the items it sees, the disk its outputs take and the time it should need, here
and (where the settings use a GPU) on one GPU. Disk: items x bytes per item (sizes.py); time:
items / the stage's rate (throughput.py), or for the demo profile the stage's own measured
time in a fresh `make demo` on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geoloc_core.encoders.architectures import QUICK_GELU_SUFFIX
from geoloc_core.preflight.data import ItemCounts
from geoloc_core.preflight.report import StageEstimate
from geoloc_core.preflight.sizes import backbone_dim, retrieval_dim, stage_sizes
from geoloc_core.preflight.throughput import (
    GPU_SEGFORMER_IMAGES_S,
    GPU_TRAIN_ITEMS_S,
    GPU_VIT_L14_IMAGES_S,
    LMM_REQUEST_S,
    Measurements,
    Rate,
    decode_rate,
    gpu_images_rate,
)

MEASURED_INDEX_DIM = 768  # benchmarks/index_search.py's vectors
QUERY_STAGES = ("retrieval", "rerank", "lmm", "verification", "baselines", "evaluation", "serving")


def stage_estimates(
    root: Path, params: dict[str, Any], counts: ItemCounts, demo: bool, gpu_here: bool
) -> list[StageEstimate]:
    measured = Measurements(root)
    demo_seconds = measured.demo_stage_seconds() if demo else {}
    if demo:
        demo_seconds["per_query"] = sum(demo_seconds.get(s, 0.0) for s in QUERY_STAGES)
    items = {
        "images": counts.images,
        "reference": counts.reference,
        "indexed": counts.reference - counts.validation,
        "queries": counts.queries,
    }
    estimates = []
    for size in stage_sizes(params):
        n = items[size.items]
        here, gpu = _rates(size.stage, params, measured, gpu_here)
        if size.stage in demo_seconds:
            seconds: float | None = demo_seconds[size.stage]
            basis = f"{size.basis}; time: measured, fresh `make demo` here"
        else:
            seconds = _seconds(n, here)
            basis = f"{size.basis}; time: {here.basis}"
        gpu_seconds = _seconds(n, gpu) if gpu is not None else None
        if gpu is not None and gpu.basis != here.basis:
            basis += f"; 1 GPU: {gpu.basis}"
        estimates.append(
            StageEstimate(
                size.stage,
                n,
                size.bytes_per_item,
                int(n * size.bytes_per_item),
                seconds,
                gpu_seconds,
                basis,
            )
        )
        if size.stage == "features":
            estimates.append(_model(params, counts, measured, demo_seconds, gpu_here))
    return estimates


def _seconds(items: int, rate: Rate) -> float | None:
    if rate.per_second is None:
        return None
    return items / rate.per_second if items else 0.0


def _wants_gpu(params: dict[str, Any], section: str) -> bool:
    return params[section]["device"] in ("cuda", "auto")


def _rates(
    stage: str, params: dict[str, Any], measured: Measurements, gpu_here: bool
) -> tuple[Rate, Rate | None]:
    """(the rate here, the rate on one GPU or None where the stage uses none)."""
    workers = params["loader"]["workers"]
    if stage == "data":
        threads = params["manifest"]["image_check_workers"]
        return Rate(
            decode_rate(threads), f"gate decodes every image, {threads} threads x 4.8 ms/JPEG"
        ), None
    if stage == "texts":
        text = params["text"]
        if text["provider"] == "openai":
            c = text["lmm_max_concurrency"]
            return Rate(
                c / LMM_REQUEST_S, f"{c} requests in flight x {LMM_REQUEST_S:.0f} s each (assumed)"
            ), None
        values = measured.find("3", "photo-like points")
        rate = float(values["per_s"]) if values else None
        return Rate(rate, "reverse geocoding, results.json"), None
    if stage == "segmentation":
        if params["segmentation"]["provider"] == "demo":
            return Rate(None, "demo provider (measured only at the demo's size)"), None
        gpu = gpu_images_rate(GPU_SEGFORMER_IMAGES_S, "segmentation model", workers)
        here = gpu if gpu_here else Rate(None, "no CPU measurement of this model")
        return here, gpu if _wants_gpu(params, "segmentation") else None
    if stage == "features":
        architecture = params["backbone"]["architecture"]
        # the activation does not change the cost: ViT-L-14-quickgelu is timed as ViT-L-14
        timed_as = architecture.removesuffix(QUICK_GELU_SUFFIX)
        cpu = measured.tower_images_s(timed_as)
        cpu_rate = Rate(
            min(cpu, decode_rate(workers)) if cpu else None,
            f"{architecture} on this CPU, results.json"
            if cpu
            else f"no measurement of {architecture} in results.json",
        )
        gpu = None
        if timed_as == "ViT-L-14" and _wants_gpu(params, "features"):
            gpu = gpu_images_rate(GPU_VIT_L14_IMAGES_S, architecture, workers)
        return (gpu if gpu_here and gpu else cpu_rate), gpu
    if stage == "index":
        if params["index"]["type"] == "ivfpq":
            rate = measured.ivfpq_build_per_s()
            width = retrieval_dim(params, backbone_dim(params["backbone"]["architecture"]))
            scaled = rate * MEASURED_INDEX_DIM / width if rate else None
            return Rate(
                scaled,
                f"IVF-PQ build (train + add) of {MEASURED_INDEX_DIM}-d vectors, results.json, "
                f"x {MEASURED_INDEX_DIM}/{width} (cost grows with the width)",
            ), None
        return Rate(None, f"{params['index']['type']} build not measured at scale"), None
    # per_query: search (similar + dissimilar) and re-rank, then the LMM's requests if any
    per_query = measured.query_seconds()
    if per_query is None:
        return Rate(None, "no search / re-rank measurement in results.json"), None
    basis = "2 IVF-PQ searches + re-rank per query, results.json"
    lmm = params["lmm"]
    if lmm["provider"] != "none":
        prompts = len(lmm["g3_rag_sizes"]) if lmm["mode"] == "g3" else 1
        per_query += prompts * LMM_REQUEST_S / lmm["max_concurrency"]
        basis += (
            f"; LMM {prompts} prompt(s)/query, {lmm['max_concurrency']} in flight, "
            f"{LMM_REQUEST_S:.0f} s each (assumed)"
        )
    return Rate(1 / per_query, basis), None


def _model(
    params: dict[str, Any],
    counts: ItemCounts,
    measured: Measurements,
    demo_seconds: dict[str, float],
    gpu_here: bool,
) -> StageEstimate:
    """Training: epochs over the reference items; its output (a checkpoint) does not grow."""
    epochs = params["train"]["epochs"]
    work = epochs * counts.reference
    gpu = work / GPU_TRAIN_ITEMS_S if _wants_gpu(params, "train") else None
    gpu_basis = f"1 GPU {GPU_TRAIN_ITEMS_S:,.0f} item-epochs/s (assumed)"
    if "model" in demo_seconds:
        here, basis = demo_seconds["model"], "time: measured, fresh `make demo` here"
    elif gpu_here and gpu is not None:
        here, basis = gpu, f"time: {gpu_basis}"
    else:
        here, basis = None, f"no CPU measurement at these model sizes; {gpu_basis}"
    return StageEstimate(
        "model", work, 0.0, 0, here, gpu, f"{epochs} epochs; a checkpoint of fixed size; {basis}"
    )
