"""Shared builders for the model and training tests (no tests here).

A tiny project carried through the real steps up to the model's inputs: manifests, place
texts, the segmentation cache (the demo provider, as params.yaml configures it), the backbone's
CLIP-style pretraining (1 epoch) and the backbone-features cache.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import yaml

from geoloc_core.data.manifest import read_manifest
from geoloc_core.models.inputs import SegmentationSource
from geoloc_core.params import load_params
from geoloc_core.paths import ProjectPaths
from geoloc_core.segmentation.settings import SegmentationSettings
from geoloc_core.segmentation.sharding import shard_keys
from geoloc_core.training.project_inputs import segmentation_source

TINY_MODEL = {
    "variant": "g3",
    "embed_dim": 32,
    "head_hidden": 64,
    "gps_sigmas": [1.0, 16.0, 256.0],
    "gps_fourier_features": 32,
    "gps_hidden": 32,
    "gps_layers": 1,
    "gps_init": None,
    "gps_projection": "mercator",
    "gps_branch_dim": None,
    "text_head": False,
    "fusion_dim": 32,
    "fusion_heads": 2,
    "fusion_layers": 1,
    "seg_grid": 4,
    "seg_layers": 1,
    "temperature_init": 0.07,
}
TINY_TRAIN = {
    "seed": 0,
    "epochs": 2,
    "batch_size": 16,
    "lr_g3": 1e-3,
    "lr_dualgeo": 1e-3,
    "weight_decay": 1e-6,
    "lr_step_gamma": 0.87,
    "same_place_km": 1.0,
    "num_threads": 2,
    "device": "cpu",
    "imported_model": None,
    "order": "global",
    "amp": "off",
    "devices": 1,
    "checkpoint_every_steps": 0,
}
TINY_BACKBONE = {
    "implementation": "open_clip",
    "architecture": "geoloc-demo-vit-tiny",
    "pretrained": None,
    "pretrain_epochs": 1,
    "pretrain_batch_size": 32,
    "pretrain_lr": 1e-3,
    "pretrain_weight_decay": 0.1,
    "pretrain_augment": 0.0,
    "pretrain_augment_share": 1.0,
    "pretrain_views_weight": 2.0,
    "pretrain_generic_share": 0.0,
    "seed": 0,
    "num_threads": 2,
}
TINY_FEATURES = {
    "precision": "fp16",
    "token_grid": 4,
    "n_shards": 2,
    "batch_size": 32,
    "device": "cpu",
    "num_threads": 2,
}


def build_tiny_inputs(template: Path, target: Path) -> Path:
    """Copy the tiny demo project and run the steps that make the alignment model's inputs."""
    from geoloc_core.segmentation.step import build_segmentation_shard
    from geoloc_core.steps.backbone import build_backbone_features, build_backbone_weights
    from geoloc_core.steps.manifests import build_benchmark_manifest, build_reference_manifest
    from geoloc_core.steps.texts import build_place_texts

    shutil.copytree(template, target)
    params = load_params(target)
    params.update(backbone=TINY_BACKBONE, features=TINY_FEATURES)
    (target / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    paths = ProjectPaths(target)
    build_reference_manifest(paths, params["data"], params["manifest"])
    benchmarks = params["benchmarks"]["names"]
    for name in benchmarks:
        build_benchmark_manifest(paths, params["data"], name, params["manifest"])
    build_place_texts(paths, params["text"])
    segmentation = params["segmentation"]
    for key in shard_keys(SegmentationSettings.from_section(segmentation).n_shards):
        report = build_segmentation_shard(paths, segmentation, benchmarks, key, log=lambda _: None)
        assert report.problems == [] and report.outcome.failures == [], report
    build_backbone_weights(paths, TINY_BACKBONE, fingerprint="tiny")
    for key in ("000", "001"):
        build_backbone_features(paths, TINY_FEATURES, benchmarks, key, log=lambda _: None)
    return target


def tiny_segmentation(root: Path) -> SegmentationSource:
    """The project's segmentation cache, opened the way training and indexing open it."""
    return segmentation_source(ProjectPaths(root))


def reference_rows(root: Path, split: str = "reference") -> pd.DataFrame:
    manifest = read_manifest(ProjectPaths(root).reference_manifest)
    return manifest[manifest["split"] == split].reset_index(drop=True)
