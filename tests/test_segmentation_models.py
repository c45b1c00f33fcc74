"""The full-profile providers end to end on real image files, with random weights.

Weights cannot be downloaded here, so a small random-initialised model of the same architecture
is saved as a local checkpoint folder and segmentation.model_id points at it: the provider then
runs the very calls it runs for a hub checkpoint (AutoConfig / from_pretrained /
AutoImageProcessor), and the step runs from manifest to reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from geoloc_core.paths import ProjectPaths
from geoloc_core.segmentation.cache import SegmentationCache
from geoloc_core.segmentation.errors import SegmentationError
from geoloc_core.segmentation.providers import make_provider
from geoloc_core.segmentation.settings import SegmentationSettings
from geoloc_core.segmentation.step import build_segmentation_shard
from tests.test_segmentation_shards import segmentation_section

ADE_LABELS = 150


def small_segformer(labels: int = ADE_LABELS):
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    config = SegformerConfig(
        num_labels=labels,
        hidden_sizes=[8, 16, 32, 64],
        depths=[1, 1, 1, 1],
        num_attention_heads=[1, 1, 2, 2],
        decoder_hidden_size=32,
    )
    return SegformerForSemanticSegmentation(config), "SegformerImageProcessor"


def small_mask2former(labels: int = ADE_LABELS):
    from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, SwinConfig

    backbone = SwinConfig(
        image_size=64,
        embed_dim=16,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 2, 2],
        window_size=4,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    config = Mask2FormerConfig(
        backbone_config=backbone,
        num_labels=labels,
        hidden_dim=32,
        mask_feature_size=32,
        feature_size=32,
        encoder_layers=1,
        decoder_layers=2,
        num_queries=8,
        encoder_feedforward_dim=64,
        dim_feedforward=64,
        num_attention_heads=2,
        use_pretrained_backbone=False,
    )
    return Mask2FormerForUniversalSegmentation(config), "Mask2FormerImageProcessor"


def save_checkpoint(folder: Path, build, labels: int = ADE_LABELS) -> Path:
    """A local checkpoint folder, laid out as a hub checkpoint is."""
    import transformers

    model, processor_name = build(labels)
    model.save_pretrained(folder)
    getattr(transformers, processor_name)().save_pretrained(folder)
    return folder


def project_with_photos(root: Path) -> ProjectPaths:
    """Two real photos (JPEG and PNG, odd sizes) and a zero-byte file in a reference manifest."""
    photos = root / "photos"
    photos.mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(photos / "a.jpg")
    Image.fromarray(rng.integers(0, 255, (70, 50, 3), dtype=np.uint8)).save(photos / "b.png")
    (photos / "broken.jpg").write_bytes(b"")
    paths = ProjectPaths(root)
    paths.manifests.mkdir(parents=True)
    pd.DataFrame(
        {
            "id": ["photo-a", "photo-b", "photo-broken"],
            "image": ["photos/a.jpg", "photos/b.png", "photos/broken.jpg"],
            "lat": [48.85, -33.9, 0.0],
            "lon": [2.35, 151.2, 0.0],
            "split": ["reference"] * 3,
            "source": ["test"] * 3,
        }
    ).to_csv(paths.reference_manifest, index=False)
    return paths


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.mark.parametrize(
    ("provider", "build"), [("segformer", small_segformer), ("mask2former", small_mask2former)]
)
def test_model_provider_end_to_end_on_real_files(tmp_path, provider, build):
    checkpoint = save_checkpoint(tmp_path / "checkpoint", build)
    paths = project_with_photos(tmp_path / "project")
    section = segmentation_section(
        provider=provider,
        model_id=str(checkpoint),
        input_resolution=64,
        output_resolution=8,
        n_shards=1,
        batch_size=2,
        device="auto",
    )
    report = build_segmentation_shard(paths, section, [], "000", log=lambda m: None)
    assert report.problems == []
    assert [f.id for f in report.outcome.failures] == ["photo-broken"]
    cache = SegmentationCache(paths.segmentation_dir)
    assert cache.ids() == ["photo-a", "photo-b"]
    maps, histograms = cache.load(["photo-b", "photo-a"])
    assert maps.shape == (2, 8, 8) and maps.dtype == np.uint8 and int(maps.max()) < ADE_LABELS
    assert histograms.shape == (2, ADE_LABELS) and histograms.dtype == np.float32
    np.testing.assert_allclose(histograms.sum(axis=1), 1.0, atol=1e-5)
    again = build_segmentation_shard(paths, section, [], "000", log=lambda m: None)
    assert again.outcome.kept and again.outcome.digest == report.outcome.digest


def test_wrong_checkpoints_are_refused_by_name(tmp_path):
    nineteen = save_checkpoint(tmp_path / "cityscapes-like", small_segformer, labels=19)
    section = segmentation_section(provider="segformer", model_id=str(nineteen))
    with pytest.raises(SegmentationError, match="predicts 19 classes"):
        make_provider(SegmentationSettings.from_section(section))
    mask2former = save_checkpoint(tmp_path / "m2f", small_mask2former)
    section = segmentation_section(provider="segformer", model_id=str(mask2former))
    with pytest.raises(SegmentationError, match="is a mask2former checkpoint"):
        make_provider(SegmentationSettings.from_section(section))
    section = segmentation_section(provider="segformer", model_id=str(tmp_path / "absent"))
    with pytest.raises(SegmentationError, match=r"cannot load segmentation\.model_id"):
        make_provider(SegmentationSettings.from_section(section))
