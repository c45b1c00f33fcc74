"""A query is embedded exactly as the index was: a file geolocated by `geoloc predict` (backbone
run on the fly) gets the same vectors as the same image read from the features cache, and its
neighbours are the brute-force nearest reference images."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from geoloc_core.data.images import load_batch
from geoloc_core.data.manifest import read_manifest
from geoloc_core.geo.metrics import DEFAULT_THRESHOLDS_KM
from geoloc_core.models.persistence import TrainedModel
from geoloc_core.paths import ProjectPaths
from geoloc_core.predict.embed import PhotoEmbeddings, embed_photos, frozen_towers
from geoloc_core.predict.predictor import predict_images
from geoloc_core.retrieval.index_record import index_record
from geoloc_core.retrieval.index_settings import IndexSettings
from geoloc_core.steps.indexing import build_index, embed_reference_shard
from geoloc_core.steps.training import load_trained, train_model
from geoloc_core.training.dataset import AlignmentData
from geoloc_core.training.embed import embed_queries
from geoloc_core.training.feature_cache import FeatureCache
from tests.test_training_helpers import (
    TINY_MODEL,
    TINY_TRAIN,
    build_tiny_inputs,
    reference_rows,
    tiny_segmentation,
)


@pytest.fixture(scope="module")
def tiny_inputs(tiny_world_template: Path, tmp_path_factory) -> Path:
    return build_tiny_inputs(tiny_world_template, tmp_path_factory.mktemp("inputs") / "project")


def trained_project(tiny_inputs: Path, target: Path, variant: str) -> ProjectPaths:
    shutil.copytree(tiny_inputs, target)
    paths = ProjectPaths(target)
    train_model(
        paths,
        {**TINY_MODEL, "variant": variant},
        {**TINY_TRAIN, "epochs": 1},
        DEFAULT_THRESHOLDS_KM,
        fingerprint="predict",
        progress=False,
    )
    return paths


def embed(paths: ProjectPaths, trained: TrainedModel, images, maps, parts=None) -> PhotoEmbeddings:
    towers = frozen_towers(trained.features, paths.root / str(trained.features.pretrained))
    return embed_photos(trained, towers, images, maps, parts)


@pytest.mark.parametrize("variant", ["g3", "dualgeo+text"])
def test_files_embed_like_cached_images(tiny_inputs, tmp_path, variant):
    paths = trained_project(tiny_inputs, tmp_path / "project", variant)
    trained = load_trained(paths)
    rows = reference_rows(paths.root, "validation").head(5)
    segmentation = tiny_segmentation(paths.root) if "dualgeo" in variant else None
    features = FeatureCache(paths.features_dir)
    cached, cached_gps = embed_queries(
        trained.model, AlignmentData(rows["id"].tolist(), features, segmentation)
    )
    images, positions, _ = load_batch(
        rows["id"].tolist(), [paths.root / p for p in rows["image"]], trained.image_size
    )
    maps = segmentation.load(rows["id"].tolist())[0] if segmentation else None
    on_the_fly = embed(paths, trained, images, maps)
    assert positions == list(range(5))
    assert np.allclose(cached, on_the_fly.retrieval, atol=1e-5)
    assert np.allclose(cached_gps, on_the_fly.gps_aligned, atol=1e-5)  # geo-verification's


def test_predict_new_files_with_g3(tiny_inputs, tmp_path):
    paths = trained_project(tiny_inputs, tmp_path / "project", "g3")
    embed_reference_shard(paths, {"parts": "auto", "batch_size": 16}, "000", 1)
    build_index(paths, IndexSettings().model_dump(), ["000"])
    photo, broken = tmp_path / "photo.jpg", tmp_path / "broken.png"
    Image.fromarray(np.full((90, 120, 3), 128, np.uint8)).save(photo)
    broken.write_bytes(b"not an image")
    good, bad = predict_images(paths.root, [photo, broken], top_k=2)
    assert bad["error"] == "not an image (no decoder recognises the bytes)"
    assert bad["lat"] is None and bad["candidates"] == []
    # nothing validated yet: no threshold for the score; the grey card is a drawn non-photo
    assert "percentile" not in good["warning"] and "one flat colour, cosine" in good["warning"]

    # the same search by brute force: cosine of the photo's embedding with every stored vector
    trained = load_trained(paths)
    images, _, _ = load_batch(["photo"], [photo], trained.image_size)
    parts = tuple(index_record(paths)["parts"])
    query = embed(paths, trained, images, None, parts).retrieval[0]
    vectors_file, ids_file, _ = paths.embedding_shard("000")
    vectors = np.load(vectors_file).astype(np.float64)
    cosine = vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
    nearest = np.argsort(-cosine)[:2]
    assert cosine[nearest[0]] - cosine[nearest[1]] > 1e-4  # no tie to decide
    ids = read_manifest(ids_file)["id"].to_numpy()
    assert good["neighbours"] == ids[nearest].tolist()
    reference = read_manifest(paths.reference_manifest).set_index("id")
    [decision, second] = good["candidates"]
    assert decision["decision"] and not second["decision"]
    assert decision["score"] >= second["score"]  # ranked by the verification cosine
    for candidate in good["candidates"]:  # each is a reference image, at its coordinates
        image = reference.loc[candidate["ref_id"]]
        assert (candidate["lat"], candidate["lon"]) == (image["lat"], image["lon"])
        ranked = cosine[np.flatnonzero(ids == candidate["ref_id"])[0]]
        assert candidate["retrieval_score"] == pytest.approx(ranked, abs=1e-3)
    assert (good["lat"], good["lon"]) == (decision["lat"], decision["lon"])
