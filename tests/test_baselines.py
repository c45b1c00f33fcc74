"""The simple baselines: colour features, streaming 1-NN, the seeded random guess, failures
counted rather than guessed, strict settings, and one scored run on a tiny demo project."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from geoloc_core.ade20k import NUM_CLASSES
from geoloc_core.baselines import METHODS
from geoloc_core.baselines.colour_features import (
    N_FEATURES,
    ColourFeatureSource,
    colour_features,
    feature_names,
)
from geoloc_core.baselines.nearest import (
    HistogramSource,
    PooledEmbeddingSource,
    StreamingNearest,
    predict_nearest,
    predict_random,
)
from geoloc_core.baselines.settings import BaselineSettings
from geoloc_core.data.manifest import read_manifest, write_manifest
from geoloc_core.params import load_params
from geoloc_core.paths import ProjectPaths
from geoloc_core.steps.baselines import compute_baselines

SETTINGS = {"methods": list(METHODS), "seed": 0, "image_size": 32, "batch_size": 256}
EVALUATION = {"thresholds_km": [1, 25, 200, 750, 2500], "distance": "geodesic"}


# --- colour features ----------------------------------------------------------------------------


def test_colour_features_follow_their_documented_layout():
    red = np.zeros((1, 8, 8, 3), np.uint8)
    red[..., 0] = 255
    split = np.zeros((1, 8, 8, 3), np.uint8)
    split[:, :4] = 255  # top half white, bottom half black
    features = colour_features(np.concatenate([red, split]))
    names = feature_names()
    assert features.shape == (2, N_FEATURES) == (2, 72) and len(names) == 72
    assert features.dtype == np.float32
    assert np.allclose(features[0, 0:12], [1, 0, 0] * 4)  # every cell is pure red
    assert np.allclose(features[0, 12:24], 0)
    assert features[0, names.index("sqrt_hist_hue00_sat3")] == pytest.approx(1.0)
    assert np.allclose(features[1, 0:6], 1) and np.allclose(features[1, 6:12], 0)
    assert features[1, names.index("sqrt_hist_hue00_sat0")] == pytest.approx(1.0)  # greys
    assert np.allclose(np.linalg.norm(features[:, 24:], axis=1), 1.0)


def test_colour_histogram_separates_hues():
    hues = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    images = np.stack([np.full((4, 4, 3), rgb, np.uint8) for rgb in hues])
    histograms = colour_features(images)[:, 24:]
    # red 0 degrees -> bin 0, green 120 -> bin 4, blue 240 -> bin 8; full saturation -> 3
    assert [int(np.argmax(h)) for h in histograms] == [0 * 4 + 3, 4 * 4 + 3, 8 * 4 + 3]


# --- streaming nearest neighbour ----------------------------------------------------------------


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("batch", [1, 7, 100])
def test_streaming_nearest_matches_brute_force(metric: str, batch: int):
    rng = np.random.default_rng(1)
    reference, queries = rng.normal(size=(53, 9)), rng.normal(size=(11, 9))
    search = StreamingNearest(queries, metric)
    for start in range(0, len(reference), batch):
        search.add(reference[start : start + batch], np.arange(start, len(reference))[:batch])
    if metric == "cosine":
        unit = reference / np.linalg.norm(reference, axis=1, keepdims=True)
        expected = np.argmax(queries @ unit.T, axis=1)
    else:
        expected = np.argmin(((queries[:, None] - reference[None]) ** 2).sum(-1), axis=1)
    assert search.best_position.tolist() == expected.tolist()


def test_streaming_nearest_ties_go_to_the_first_reference():
    reference = np.tile([[1.0, 2.0]], (6, 1))
    search = StreamingNearest(np.array([[1.0, 2.0]]), "euclidean")
    for start in range(0, 6, 2):
        search.add(reference[start : start + 2], np.arange(start, start + 2))
    assert search.best_position.tolist() == [0]


# --- the four predictors over ids ---------------------------------------------------------------


def _noise_png(path: Path, seed: int) -> str:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(20, 20, 3), dtype=np.uint8)
    pixels[:10] //= 1 + seed % 4  # give each image its own colour layout
    Image.fromarray(pixels).save(path)
    return path.name


def test_raw_pixels_finds_an_exact_copy_and_counts_broken_images(tmp_path: Path):
    reference = [_noise_png(tmp_path / f"ref{i}.png", i) for i in range(10)]
    (tmp_path / "broken-ref.png").write_bytes(b"not an image")
    reference.append("broken-ref.png")
    shutil.copy(tmp_path / "ref5.png", tmp_path / "q-copy5.png")
    shutil.copy(tmp_path / "ref8.png", tmp_path / "q-copy8.png")
    (tmp_path / "q-broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    queries = ["q-copy5.png", "q-broken.jpg", "q-copy8.png"]
    prediction = predict_nearest(
        ["copy5", "broken", "copy8"],
        queries,
        [f"r{i}" for i in range(len(reference))],
        reference,
        ColourFeatureSource(tmp_path, image_size=16),
        batch_size=3,
    )
    assert prediction.query_positions.tolist() == [0, 2]
    assert prediction.reference_positions.tolist() == [5, 8]
    assert list(prediction.failures) == ["broken"] and prediction.failures["broken"]
    assert prediction.reference_failed == 1


class FakeCache:
    """The two-array-per-id contract of SegmentationCache and FeatureCache, in memory."""

    def __init__(self, second: dict[str, np.ndarray], failed: dict[str, str]):
        self.second, self.failed = second, failed

    def load(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        missing = [i for i in ids if i not in self.second]
        if missing:
            raise KeyError(missing[0])
        rows = np.stack([self.second[i] for i in ids])
        return rows, rows

    def failures(self) -> dict[str, str]:
        return dict(self.failed)


def test_label_histogram_finds_identical_maps():
    rng = np.random.default_rng(2)
    histograms = rng.dirichlet(np.full(NUM_CLASSES, 0.3), size=40).astype(np.float32)
    rows = {f"r{i}": h for i, h in enumerate(histograms)}
    rows |= {"q-a": histograms[17], "q-b": histograms[3]}
    cache = FakeCache(rows, {"q-failed": "undecodable image", "r40": "undecodable image"})
    reference = [f"r{i}" for i in range(41)]
    prediction = predict_nearest(
        ["q-a", "q-failed", "q-b"], [""] * 3, reference, [""] * 41, HistogramSource(cache), 8
    )
    assert prediction.reference_positions.tolist() == [17, 3]
    assert "undecodable image" in prediction.failures["q-failed"]
    assert prediction.reference_failed == 1


def test_frozen_backbone_is_nearest_by_cosine():
    rng = np.random.default_rng(3)
    pooled = rng.normal(size=(30, 16)).astype(np.float16)
    rows = {f"r{i}": p for i, p in enumerate(pooled)} | {"q": (pooled[22] * 3).astype(np.float16)}
    prediction = predict_nearest(
        ["q"], [""], list(rows)[:30], [""] * 30, PooledEmbeddingSource(FakeCache(rows, {})), 4
    )
    assert prediction.reference_positions.tolist() == [22]


def test_random_is_reproducible_per_seed_and_differs_across_seeds():
    first = predict_random(500, 1000, seed=0).reference_positions
    again = predict_random(500, 1000, seed=0).reference_positions
    other = predict_random(500, 1000, seed=1).reference_positions
    assert first.tolist() == again.tolist()
    assert first.tolist() != other.tolist()
    assert first.min() >= 0 and first.max() < 1000


# --- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"seed": None}, "missing ['seed']"),
        ({"workers": 2}, "unknown ['workers']"),
        ({"methods": ["random", "knn"]}, "must be a non-empty list, each one of ['random'"),
        ({"methods": []}, "baselines.methods=[]: must be a non-empty list"),
        ({"methods": "random"}, "baselines.methods='random': must be a non-empty list"),
        ({"methods": ["random", "random"]}, "names a baseline twice"),
        ({"image_size": 1}, "baselines.image_size=1"),
        ({"batch_size": 0}, "baselines.batch_size=0"),
        ({"seed": True}, "baselines.seed=True"),
    ],
)
def test_settings_errors_name_the_key(change: dict, named: str):
    section = {**SETTINGS, **change}
    section = {k: v for k, v in section.items() if v is not None}
    with pytest.raises(ValueError) as error:
        BaselineSettings.from_section(section)
    assert named in str(error.value) and "\n" not in str(error.value)


def test_settings_accept_the_params_block():
    settings = BaselineSettings.from_section(SETTINGS)
    assert settings.methods == METHODS and settings.image_size == 32


# --- end to end on a tiny demo project ----------------------------------------------------------


def build_scored_project(template: Path, root: Path) -> Path:
    """The tiny demo project carried to the baselines' inputs: manifests (written straight from
    the demo world, skipping the gate, which costs most of the time here), place texts, the
    backbone (1 epoch), its features and the segmentation cache."""
    from geoloc_core.data.manifest import REFERENCE_SPLITS, demo_manifest
    from geoloc_core.segmentation.sharding import shard_keys
    from geoloc_core.segmentation.step import build_segmentation_shard
    from geoloc_core.steps.backbone import build_backbone_features, build_backbone_weights
    from geoloc_core.steps.texts import build_place_texts
    from tests.test_training_helpers import TINY_BACKBONE, TINY_FEATURES

    shutil.copytree(template, root)
    params = load_params(root)
    paths = ProjectPaths(root)
    world = demo_manifest(root / params["data"]["root"], root)
    write_manifest(world[world["split"].isin(REFERENCE_SPLITS)], paths.reference_manifest)
    benchmarks = params["benchmarks"]["names"]
    for name in benchmarks:
        write_manifest(world[world["split"] == name], paths.benchmark_manifest(name))
    build_place_texts(paths, params["text"])
    build_backbone_weights(paths, TINY_BACKBONE, fingerprint="baselines")
    quiet = lambda _: None  # noqa: E731
    for key in shard_keys(TINY_FEATURES["n_shards"]):
        build_backbone_features(paths, TINY_FEATURES, benchmarks, key, log=quiet)
    for key in shard_keys(params["segmentation"]["n_shards"]):
        build_segmentation_shard(paths, params["segmentation"], benchmarks, key, log=quiet)
    return root


COPIED_REFERENCE_ROW = 4


def scored_project_source(paths: ProjectPaths) -> str:
    """The id of the reference image the first demo-street query was made a copy of."""
    reference = read_manifest(paths.reference_manifest)
    return reference[reference["split"] == "reference"]["id"].iloc[COPIED_REFERENCE_ROW]


@pytest.fixture(scope="module")
def scored_project(tiny_world_template: Path, tmp_path_factory) -> Path:
    """One benchmark query turned into an exact copy of a reference image, another's file
    broken after the caches were built (so only raw_pixels, which decodes, sees it)."""
    root = build_scored_project(tiny_world_template, tmp_path_factory.mktemp("baselines") / "p")
    paths = ProjectPaths(root)
    reference = read_manifest(paths.reference_manifest)
    source = reference[reference["split"] == "reference"].iloc[COPIED_REFERENCE_ROW]
    street = read_manifest(paths.benchmark_manifest("demo-street"))
    street.loc[0, ["image", "lat", "lon"]] = [source["image"], source["lat"], source["lon"]]
    write_manifest(street, paths.benchmark_manifest("demo-street"))
    (root / street.loc[1, "image"]).write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return root


def test_compute_baselines_writes_scores_predictions_and_failures(scored_project: Path):
    paths = ProjectPaths(scored_project)
    street = read_manifest(paths.benchmark_manifest("demo-street"))
    summary = compute_baselines(paths, "demo-street", SETTINGS, EVALUATION)

    scores = json.loads(paths.baseline_metrics("demo-street").read_text())
    accuracies = ["acc_1km", "acc_25km", "acc_200km", "acc_750km", "acc_2500km"]
    expected = {*accuracies, "median_km", "mean_km", "n", "failed", "reference_failed"}
    assert list(scores) == sorted(METHODS)
    for method, row in scores.items():
        assert set(row) == expected, method
        assert all(0.0 <= row[a] <= 100.0 for a in accuracies)
        assert summary[f"{method}.acc_25km"] == row["acc_25km"]
    assert scores["raw_pixels"]["failed"] == 1
    assert scores["raw_pixels"]["n"] == len(street) - 1
    for method in ("random", "label_histogram", "frozen_backbone"):
        assert scores[method]["failed"] == 0 and scores[method]["n"] == len(street)

    pixels = read_manifest(paths.baseline_predictions("demo-street", "raw_pixels"))
    assert list(pixels.columns) == ["id", "lat", "lon", "pred_lat", "pred_lon", "neighbour"]
    copy = pixels[pixels["id"] == street.loc[0, "id"]].iloc[0]
    assert copy["neighbour"] == scored_project_source(paths)
    assert (copy["pred_lat"], copy["pred_lon"]) == pytest.approx((copy["lat"], copy["lon"]))
    assert street.loc[1, "id"] not in set(pixels["id"])
    failed = read_manifest(paths.baseline_failures("demo-street", "raw_pixels"))
    assert failed["id"].tolist() == [street.loc[1, "id"]]
    assert failed["reason"].iloc[0]


def test_compute_baselines_random_depends_only_on_the_seed(scored_project: Path):
    paths = ProjectPaths(scored_project)
    runs = []
    for seed in (0, 0, 5):
        compute_baselines(
            paths, "demo-unseen", {**SETTINGS, "methods": ["random"], "seed": seed}, EVALUATION
        )
        runs.append(paths.baseline_predictions("demo-unseen", "random").read_bytes())
    assert runs[0] == runs[1] != runs[2]
