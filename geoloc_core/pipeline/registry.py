"""Every step of the pipeline, declared once, in the order the data flows.

The Dagster assets (geoloc_assets.factory), their code versions, `geoloc status` and dvc.yaml
(geoloc_core.pipeline.dvc_stages) are all built from this list. To add a step: write its module
under geoloc_core/pipeline/, add its entry here, add its params section (docs/extending.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geoloc_core.pipeline.stage import Check, Output, Stage, Upstream
from geoloc_core.predict.far_warning import CALIBRATION_BENCHMARK

RUN = "geoloc_core.pipeline."
BENCHMARK = "benchmark"
FEATURE_SHARD = "feature_shard"
SEGMENTATION_SHARD = "segmentation_shard"


def _segments_with_a_model(params: Mapping[str, Any]) -> bool:
    """The demo's label maps need no GPU; SegFormer and Mask2Former do."""
    from geoloc_core.segmentation.settings import MODEL_PROVIDERS

    return params["segmentation"]["provider"] in MODEL_PROVIDERS


def _training_devices(params: Mapping[str, Any]) -> int:
    """Training runs one process per device under torchrun, all in one pod (train.devices)."""
    return int(params["train"]["devices"])


STAGES: tuple[Stage, ...] = (
    Stage(
        name="reference_manifest",
        group="data",
        sections=("data", "manifest"),
        run=RUN + "manifests:reference_manifest",
        description="Reference (database + training) and validation rows in the common schema.",
        upstream=(Upstream("raw_data"),),
        outputs=(Output("artifacts/manifests"),),
        provides=("artifacts/manifests/reference.csv",),
        checks=(
            Check(
                "reference_manifest_gate",
                "Great Expectations gate: blocks everything downstream when too many rows are "
                "quarantined or a known dataset has the wrong size.",
                blocking=True,
                evaluate=RUN + "manifests:gate_verdict",
            ),
        ),
    ),
    Stage(
        name="benchmark_manifest",
        group="data",
        sections=("data", "manifest"),
        run=RUN + "manifests:benchmark_manifest",
        description="One benchmark's query rows in the common schema.",
        upstream=(Upstream("raw_data"),),
        partitioning=BENCHMARK,
        provides=("artifacts/manifests/benchmarks",),
        checks=(
            Check(
                "benchmark_manifest_gate",
                "Great Expectations gate for one benchmark (same rules as the reference).",
                blocking=True,
                evaluate=RUN + "manifests:gate_verdict",
            ),
        ),
    ),
    Stage(
        name="place_texts",
        group="texts",
        sections=("text",),
        run=RUN + "place_texts:place_texts",
        description="Place fields and a caption per reference image (offline reverse geocoding;"
        " optional LMM descriptions), artifacts/texts/place_texts.csv.",
        upstream=(Upstream("reference_manifest"),),
        outputs=(Output("artifacts/texts"),),
        provides=("artifacts/texts/place_texts.csv",),
    ),
    Stage(
        name="segmentation_cache",
        group="segmentation",
        sections=("segmentation", "benchmarks", "loader"),
        run=RUN + "segmentation_cache:segmentation_cache",
        description="ADE20K label map + class histogram per reference and benchmark image, one "
        "file per shard of image ids (segmentation params section).",
        upstream=(Upstream("reference_manifest"), Upstream("benchmark_manifest", True)),
        partitioning=SEGMENTATION_SHARD,
        outputs=(Output("artifacts/segmentation"),),
        gpu=_segments_with_a_model,
        checks=(
            Check(
                "shard_is_sound",
                "The shard re-read from disk: checksum, settings, every id covered.",
            ),
        ),
        # worker processes decoding images: read by backbone_features and predict too
        new_sections=(("loader", "geoloc_core.data.loader_settings:LoaderSettings"),),
    ),
    Stage(
        name="backbone_weights",
        group="features",
        sections=("backbone",),
        run=RUN + "backbone_weights:backbone_weights",
        description="The frozen image/text towers' weights: an open_clip tag (full profile: "
        "ViT-L-14-quickgelu openai) or a transformers CLIP checkpoint, or the demo's CLIP-style "
        "pretraining on reference images and captions.",
        upstream=(Upstream("reference_manifest"), Upstream("place_texts")),
        outputs=(Output("artifacts/backbone"),),
        gpu=True,
    ),
    Stage(
        name="backbone_features",
        group="features",
        sections=("features", "benchmarks", "loader"),
        run=RUN + "backbone_features:backbone_features",
        description="Frozen image tower outputs (pooled embedding + pooled patch-token grid, "
        "fp16 or fp32: features.precision) for every reference and benchmark image, one "
        "directory per shard of image ids.",
        upstream=(
            Upstream("backbone_weights"),
            Upstream("reference_manifest"),
            Upstream("benchmark_manifest", True),
        ),
        partitioning=FEATURE_SHARD,
        outputs=(Output("artifacts/features"),),
        gpu=True,
    ),
    Stage(
        name="alignment_model",
        group="model",
        sections=("model", "train"),
        run=RUN + "alignment_model:alignment_model",
        description="Geo-alignment heads of model.variant (image-only, g3, dualgeo, "
        "dualgeo+text) trained contrastively on the cached backbone features of the reference "
        "split.",
        upstream=(
            Upstream("reference_manifest"),
            Upstream("place_texts"),
            Upstream("segmentation_cache", True),
            Upstream("backbone_features", True),
        ),
        outputs=(Output("artifacts/model"),),
        gpu=_training_devices,
    ),
    Stage(
        name="reference_embeddings",
        group="index",
        sections=("embeddings",),
        run=RUN + "reference_embeddings:reference_embeddings",
        description="One shard of reference images as retrieval vectors (fp16): "
        "embeddings.parts, by default each paper's own (G3: frozen | image->text | image->GPS; "
        "DualGeo: fused | frozen).",
        upstream=(
            Upstream("alignment_model"),
            Upstream("segmentation_cache", True),
            Upstream("backbone_features"),
        ),
        partitioning=FEATURE_SHARD,
        outputs=(Output("artifacts/embeddings"),),
        gpu=True,
    ),
    Stage(
        name="retrieval_index",
        group="index",
        sections=("index",),
        run=RUN + "retrieval_index:retrieval_index",
        description="FAISS index (index.type: flat, ivfpq or hnsw) over every embedding shard.",
        upstream=(Upstream("reference_embeddings", True),),
        outputs=(Output("artifacts/index"),),
    ),
    Stage(
        name="candidates",
        group="retrieval",
        sections=("retrieval", "index"),
        run=RUN + "candidates:candidates",
        description="Per query: the top retrieval.top_k similar and retrieval.dissimilar_k "
        "least similar reference images, with coordinates, scores and place names.",
        upstream=(
            Upstream("retrieval_index"),
            Upstream("alignment_model"),
            Upstream("benchmark_manifest"),
            Upstream("place_texts"),
            # queries are embedded from the cached backbone outputs and segmentation
            Upstream("backbone_features", True),
            Upstream("segmentation_cache", True),
        ),
        partitioning=BENCHMARK,
        outputs=(Output("artifacts/candidates"),),
        gpu=True,  # embeds the queries and searches (faiss-gpu when present)
    ),
    Stage(
        name="rerank",
        group="rerank",
        sections=("rerank",),
        run=RUN + "rerank:rerank",
        description="Similar candidates re-sorted by distance to the spherical centre of their "
        "largest cluster (haversine; rerank.method dbscan: rerank.eps_km, rerank.min_samples; "
        "hdbscan: rerank.min_cluster_size, rerank.min_samples).",
        upstream=(Upstream("candidates"),),
        partitioning=BENCHMARK,
        outputs=(Output("artifacts/rerank"),),
    ),
    Stage(
        name="lmm_diversification",
        group="lmm",
        sections=("lmm",),
        run=RUN + "lmm_stages:lmm_diversification",
        description="G3's geo-diversification: a zero-shot and RAG prompts (r similar and r "
        "dissimilar neighbour coordinates) per query, n answers each, parsed and counted.",
        upstream=(Upstream("candidates"), Upstream("benchmark_manifest")),
        partitioning=BENCHMARK,
        outputs=(Output("artifacts/lmm"),),
    ),
    Stage(
        name="lmm_reasoning",
        group="verification",  # DualGeo's LMM decides: it runs with the verification stage
        sections=("lmm",),
        run=RUN + "lmm_stages:lmm_reasoning",
        description="DualGeo's LMM reasoning: the query photo with the top-m re-ranked "
        "candidates' photos, coordinates and place names; its answer is the decision.",
        upstream=(
            Upstream("rerank"),
            Upstream("candidates"),
            Upstream("reference_manifest"),
            Upstream("benchmark_manifest"),
        ),
        partitioning=BENCHMARK,
        outputs=(Output("artifacts/lmm_reasoning"),),
    ),
    Stage(
        name="confidence_calibration",
        group="verification",  # it takes the calibration benchmark's decisions as verification
        sections=("confidence", "verification", "evaluation"),
        run=RUN + "confidence_calibration:confidence_calibration",
        description="The confidence radii's model: from the calibration benchmark's decisions "
        "(validation), radii (km) that hold the truth with each stated probability "
        "(confidence.levels), from the candidates' spread, agreement and verification margin.",
        upstream=(
            Upstream("rerank"),
            Upstream("candidates"),
            Upstream("alignment_model"),
            Upstream("lmm_diversification"),
            Upstream("lmm_reasoning"),
            Upstream("benchmark_manifest"),
        ),
        outputs=(Output("artifacts/confidence"),),
        new_sections=(("confidence", "geoloc_core.confidence.settings:ConfidenceSettings"),),
    ),
    Stage(
        name="verification",
        group="verification",
        sections=("verification",),
        run=RUN + "verification:verification",
        description="The decision per query: argmax of cos(image GPS-aligned embedding, "
        "candidate GPS embedding) over the top verification.pool_size re-ranked candidates "
        "plus G3's LMM answers (verify), or the first of them (top1); with DualGeo's LMM "
        "reasoning, its answer; beside it its confidence radii (confidence_calibration).",
        upstream=(
            Upstream("rerank"),
            Upstream("candidates"),
            Upstream("alignment_model"),
            Upstream("lmm_diversification"),
            Upstream("lmm_reasoning"),
            Upstream("confidence_calibration"),
        ),
        partitioning=BENCHMARK,
        outputs=(Output("artifacts/predictions"),),
    ),
    Stage(
        name="baselines",
        group="baselines",
        sections=("baselines", "evaluation"),
        run=RUN + "baselines:baselines",
        description="metrics/baselines/{benchmark}.json: a random reference image, and 1-NN "
        "over raw colour features, label histograms and the frozen backbone embedding.",
        upstream=(
            Upstream("reference_manifest"),
            Upstream("benchmark_manifest"),
            Upstream("segmentation_cache", True),
            Upstream("backbone_features", True),
        ),
        partitioning=BENCHMARK,
        outputs=(
            Output("artifacts/baselines"),
            Output("metrics/baselines/{benchmark}.json", metric=True, cache=False),
        ),
        provides=("artifacts/baselines", "metrics/baselines"),
    ),
    Stage(
        name="metrics",
        group="evaluation",
        sections=("evaluation",),
        run=RUN + "metrics:metrics",
        description="metrics/{benchmark}.json: accuracy at each threshold, median and mean "
        "error, and the same for the retrieval top-1 and the re-ranked top-1 (stages).",
        upstream=(Upstream("verification"),),
        partitioning=BENCHMARK,
        outputs=(
            Output("artifacts/errors"),
            Output("metrics/{benchmark}.json", metric=True, cache=False),
        ),
    ),
    Stage(
        name="report",
        group="evaluation",
        sections=("evaluation", "benchmarks"),
        # its rows are labelled with what each benchmark's metrics were produced with (their
        # recorded lineage); a change to these sections must still re-label them
        tracks=("model", "embeddings", "rerank", "verification", "lmm"),
        run=RUN + "report:report",
        description="reports/report.md and reports/report.html (self-contained): per benchmark "
        "each stage, the baselines and published results; error CDFs, prediction maps on "
        "coastlines; plot data metrics/plots/cdf_*.csv and accuracy_*.csv for DVC.",
        upstream=(Upstream("metrics", True), Upstream("baselines", True)),
        outputs=(Output("reports"), Output("metrics/plots", cache=False)),
    ),
    Stage(
        name="served_model",
        group="serving",
        # the predict path's sections (geoloc_core/predict/settings.py); segmentation and text
        # reach it through the model's and the place texts' content
        sections=("retrieval", "index", "rerank", "lmm", "verification"),
        run=RUN + "served_model:served_model",
        description="The predict path as an MLflow pyfunc model (base64 photos in, ranked "
        "candidates out), self-contained, registered as geoloc-predict.",
        upstream=(
            Upstream("alignment_model"),
            Upstream("backbone_weights"),
            Upstream("retrieval_index"),
            Upstream("place_texts"),
            # the far-photo warning's threshold, calibrated on validation's decisions and errors
            Upstream("verification", partition=CALIBRATION_BENCHMARK),
            Upstream("metrics", partition=CALIBRATION_BENCHMARK),
            Upstream("confidence_calibration"),
        ),
        outputs=(Output("artifacts/serving"),),
    ),
)

SOURCES = ("raw_data",)  # observed, not computed: the raw data's version (data.dvc)
RAW_DATA_PATH = "data/raw"


def stage_named(name: str) -> Stage:
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise KeyError(f"no step named {name!r}; the steps are {[s.name for s in STAGES]}")


def asset_sections() -> dict[str, tuple[str, ...]]:
    """Which params sections mark each step stale (its Config's, and those it tracks)."""
    return {stage.name: stage.hashed_sections for stage in STAGES}


def readers(section_name: str) -> set[str]:
    """The steps that read a params section (their code versions hash it)."""
    return {stage.name for stage in STAGES if section_name in stage.hashed_sections}


def downstream(names: set[str]) -> set[str]:
    """The steps named and every step below them: what a change to them re-runs."""
    below = set(names)
    for stage in STAGES:  # in the order the data flows, so one pass reaches the bottom
        if any(u.step in below for u in stage.upstream):
            below.add(stage.name)
    return below
