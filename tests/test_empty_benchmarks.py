"""A configured benchmark whose data set is absent is skipped, not failed: its manifest is
empty, and every step after it writes well-formed empty outputs (metrics with n = 0 and the
reason, no accuracy). A present but broken data set still fails at the gate. A benchmark of one
image goes through every step and scores exactly that image's error."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import torch

from geoloc_core.data.manifest import (
    MANIFEST_COLUMNS,
    REFERENCE_SPLITS,
    ManifestError,
    demo_manifest,
    read_manifest,
    write_manifest,
)
from geoloc_core.geo.distance import distance_km
from geoloc_core.lmm.settings import DEFAULTS as LMM_DEFAULTS
from geoloc_core.lmm.stub_server import LmmStubServer
from geoloc_core.params import load_params
from geoloc_core.paths import (
    ANSWER_COLUMNS,
    CANDIDATE_COLUMNS,
    PREDICTION_COLUMNS,
    RERANK_COLUMNS,
    ProjectPaths,
)
from geoloc_core.segmentation.sharding import shard_keys
from geoloc_core.steps.baselines import compute_baselines
from geoloc_core.steps.candidates import build_candidates
from geoloc_core.steps.evaluate import evaluate_benchmark
from geoloc_core.steps.lmm import run_lmm_stage
from geoloc_core.steps.manifests import build_benchmark_manifest
from geoloc_core.steps.rerank import rerank_candidates
from geoloc_core.steps.tables import read_candidates, read_query_embeddings, read_reranked
from geoloc_core.steps.verification import verify_benchmark
from geoloc_core.validation.gate import read_report
from tests.conftest import tiny_params

ABSENT = "im2gps3k"  # no data/raw/im2gps3k in the tiny project
ONE = "demo-unseen"  # cut down to its first image
BENCHMARKS = [ONE, ABSENT]
THRESHOLDS = [1, 25, 200, 750, 2500]
EVALUATION = {"thresholds_km": THRESHOLDS, "distance": "geodesic"}
KEY_ENV = "GEOLOC_TEST_EMPTY_BENCHMARK_KEY"
TINY_MODEL = {"embed_dim": 32, "head_hidden": 32, "gps_fourier_features": 32, "gps_hidden": 32}
QUIET = lambda _: None  # noqa: E731


def random_backbone(paths: ProjectPaths, architecture: str) -> None:
    """The towers at their seeded random initialisation, recorded as backbone_weights does:
    these tests check what flows through the steps, not how well the towers see."""
    from geoloc_core.encoders.clip_towers import TowerSpec, build_clip
    from geoloc_core.training.backbone_weights import (
        BackboneRecord,
        file_sha256,
        write_record,
    )

    torch.manual_seed(0)
    towers = build_clip(TowerSpec(architecture, None))
    weights = paths.backbone_dir / f"{architecture}-random.pt"
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(towers.model.state_dict(), weights)
    relative = weights.relative_to(paths.root).as_posix()
    write_record(paths.root, BackboneRecord(architecture, relative, file_sha256(weights)))


def build_manifests(paths: ProjectPaths, params: dict) -> None:
    """Reference rows straight from the demo world (the gate has its own tests), ONE cut to
    one image, and ABSENT through the real manifest step."""
    world = demo_manifest(paths.root / params["data"]["root"], paths.root)
    write_manifest(world[world["split"].isin(REFERENCE_SPLITS)], paths.reference_manifest)
    write_manifest(world[world["split"] == ONE].head(1), paths.benchmark_manifest(ONE))
    build_benchmark_manifest(paths, params["data"], ABSENT, params["manifest"])


def build_index_inputs(paths: ProjectPaths, params: dict) -> None:
    """Segmentation, backbone features, a 1-epoch model, reference embeddings and the index,
    each through its step; the caches read the empty ABSENT manifest like any other."""
    from geoloc_core.segmentation.step import build_segmentation_shard
    from geoloc_core.steps.backbone import build_backbone_features
    from geoloc_core.steps.indexing import build_index, embed_reference_shard
    from geoloc_core.steps.texts import build_place_texts
    from geoloc_core.steps.training import train_model

    build_place_texts(paths, params["text"])
    for key in shard_keys(params["segmentation"]["n_shards"]):
        report = build_segmentation_shard(paths, params["segmentation"], BENCHMARKS, key, QUIET)
        assert report.problems == [] and report.outcome.failures == [], report
    random_backbone(paths, params["backbone"]["architecture"])
    features = {**params["features"], "token_grid": 4, "device": "cpu"}
    feature_keys = shard_keys(features["n_shards"])
    for key in feature_keys:
        build_backbone_features(paths, features, BENCHMARKS, key, log=QUIET)
    train = {**params["train"], "epochs": 1, "device": "cpu"}
    model = {**params["model"], **TINY_MODEL, "variant": "g3"}
    train_model(paths, model, train, tuple(THRESHOLDS), fingerprint="empty", progress=False)
    for key in feature_keys:
        embed_reference_shard(paths, params["embeddings"], key, len(feature_keys))
    build_index(paths, params["index"], feature_keys, log=QUIET)


@pytest.fixture(scope="module")
def built(tiny_world_template: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("empty-benchmarks") / "project"
    shutil.copytree(tiny_world_template, root)
    params = load_params(root)
    paths = ProjectPaths(root)
    build_manifests(paths, params)
    build_index_inputs(paths, params)
    return root


@pytest.fixture
def project(built: Path, tmp_path: Path) -> tuple[ProjectPaths, dict]:
    """A fresh copy of the built project per test, and its params."""
    root = tmp_path / "project"
    shutil.copytree(built, root)
    return ProjectPaths(root), load_params(root)


def lmm_section(mode: str, base_url: str) -> dict:
    return LMM_DEFAULTS | {
        "provider": "openai",
        "mode": mode,
        "model": "test-vlm",
        "base_url": base_url,
        "api_key_env": KEY_ENV,
        "n": 2,
        "g3_rag_sizes": [0, 5],
        "backoff_s": 0.01,
        "timeout_s": 2.0,
    }


def run_after_index(paths: ProjectPaths, params: dict, benchmark: str, base_url: str) -> dict:
    """Every step after the index, in graph order, for one benchmark; their summaries."""
    done = {
        "candidates": build_candidates(paths, benchmark, params["retrieval"], params["index"]),
        "rerank": rerank_candidates(paths, benchmark, params["rerank"]),
    }
    for mode in ("g3", "dualgeo"):  # both active: G3's answers join the pool, DualGeo decides
        done[f"lmm_{mode}"] = run_lmm_stage(
            paths, benchmark, lmm_section(mode, base_url), progress=False, log=QUIET, for_mode=mode
        )
    done["verification"] = verify_benchmark(paths, benchmark, params["verification"])
    done["metrics"] = evaluate_benchmark(paths, benchmark, EVALUATION)
    done["baselines"] = compute_baselines(paths, benchmark, params["baselines"], EVALUATION)
    return done


def strict_json(path: Path) -> dict:
    """The file as JSON, refusing NaN and infinities (not JSON, and not a "no data")."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{path} holds {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


# --- the data step ----------------------------------------------------------------------------


def test_an_absent_benchmark_is_an_empty_manifest_that_says_which_file_to_provide(tmp_path):
    paths = ProjectPaths(tmp_path)
    params = tiny_params()
    summary = build_benchmark_manifest(paths, params["data"], ABSENT, params["manifest"])
    csv = params["data"]["im2gps3k_csv"]
    assert csv in summary["skipped"] and "params data.im2gps3k_csv" in summary["skipped"]
    assert params["data"]["im2gps3k_images"] in summary["skipped"]
    assert summary["rows"] == 0 and summary["gate_passed"] is True
    manifest = read_manifest(paths.benchmark_manifest(ABSENT))
    assert manifest.empty and tuple(manifest.columns) == MANIFEST_COLUMNS
    report = read_report(paths.validation_report(ABSENT))
    # the known size (manifest.expected_rows_im2gps3k) is not asked of data that is not there
    assert report.passed and report.row_count_ok and report.expected_rows is None
    assert report.skipped == summary["skipped"] and report.message.startswith("skipped: ")


@pytest.mark.parametrize(
    ("csv_text", "failure"),
    [
        ("IMG_ID,LATITUDE,LONGITUDE\na.jpg,1,2\n", "lacks columns"),
        ("IMG_ID,LAT,LON\n", "has no rows"),
        ("IMG_ID,LAT,LON\na.jpg,48.85,2.35\nb.jpg,40.7,-74.0\n", "gate"),  # photos missing
    ],
)
def test_a_present_but_broken_benchmark_still_fails(tmp_path, csv_text: str, failure: str):
    paths = ProjectPaths(tmp_path)
    params = tiny_params()
    csv = tmp_path / params["data"]["im2gps3k_csv"]
    csv.parent.mkdir(parents=True)
    csv.write_text(csv_text)
    if failure != "gate":
        with pytest.raises(ManifestError, match=failure):
            build_benchmark_manifest(paths, params["data"], ABSENT, params["manifest"])
        return
    summary = build_benchmark_manifest(paths, params["data"], ABSENT, params["manifest"])
    report = read_report(paths.validation_report(ABSENT))
    assert "skipped" not in summary and not report.skipped
    assert not report.passed and not report.row_count_ok  # 2 rows of a 2997-row data set


# --- every step after the index -----------------------------------------------------------------


def test_an_empty_benchmark_writes_well_formed_empty_outputs_at_every_step(project, monkeypatch):
    paths, params = project
    monkeypatch.delenv(KEY_ENV, raising=False)  # nothing to ask: no key, no server needed
    done = run_after_index(paths, params, ABSENT, "http://127.0.0.1:9/v1")

    assert done["candidates"]["queries"] == 0 and "mean_top1_score" not in done["candidates"]
    candidates = read_candidates(paths, ABSENT)
    assert candidates.empty and tuple(candidates.columns) == CANDIDATE_COLUMNS
    ids, vectors = read_query_embeddings(paths, ABSENT)
    assert ids == [] and vectors.shape == (0, TINY_MODEL["embed_dim"])
    reranked = read_reranked(paths, ABSENT)
    assert reranked.empty and tuple(reranked.columns) == RERANK_COLUMNS
    for mode in ("g3", "dualgeo"):
        answers = pd.read_csv(paths.lmm_answers(ABSENT, mode))
        assert answers.empty and tuple(answers.columns) == ANSWER_COLUMNS
        assert done[f"lmm_{mode}"]["skipped"] is True
        assert "no queries" in done[f"lmm_{mode}"]["skip_reason"]
    predictions = pd.read_csv(paths.predictions(ABSENT))
    assert predictions.empty and tuple(predictions.columns) == PREDICTION_COLUMNS
    assert done["verification"]["predictions"] == 0

    metrics = strict_json(paths.metrics(ABSENT))
    assert metrics == done["metrics"]
    assert metrics["n"] == 0 and params["data"]["im2gps3k_csv"] in metrics["skipped"]
    assert not [k for k in metrics if k.startswith("acc_") or k.endswith("_km")], metrics
    assert metrics["stages"] == {"retrieval": {"n": 0}, "rerank": {"n": 0}}
    errors = pd.read_csv(paths.errors(ABSENT))
    assert errors.empty and list(errors.columns) == ["id", "error_km"]

    baselines = strict_json(paths.baseline_metrics(ABSENT))
    assert set(baselines) == set(params["baselines"]["methods"])
    for method, scores in baselines.items():
        assert scores == {"n": 0, "skipped": "the benchmark has no queries"}, method
        assert pd.read_csv(paths.baseline_predictions(ABSENT, method)).empty


def test_a_one_image_benchmark_scores_exactly_that_images_error(project, monkeypatch):
    paths, params = project
    monkeypatch.setenv(KEY_ENV, "sk-test")
    with LmmStubServer() as server:
        done = run_after_index(paths, params, ONE, server.base_url)
    [truth] = read_manifest(paths.benchmark_manifest(ONE)).itertuples()
    assert done["candidates"]["queries"] == 1 and done["rerank"]["queries"] == 1
    assert done["lmm_g3"]["answers_kept"] == 2 * 2  # sizes 0 and 5, n = 2
    assert done["verification"]["decided_by_lmm_reasoning"] == 1
    [row] = pd.read_csv(paths.predictions(ONE), dtype={"id": str}).itertuples()
    assert (row.id, row.lat, row.lon) == (truth.id, truth.lat, truth.lon)
    assert row.source == "lmm-dualgeo"

    def error(lat: float, lon: float) -> float:
        return float(distance_km([truth.lat], [truth.lon], [lat], [lon], method="geodesic")[0])

    def expected(km: float) -> dict:
        accuracy = {f"acc_{t:g}km": 100.0 if km < t else 0.0 for t in THRESHOLDS}
        return {**accuracy, "median_km": km, "mean_km": km, "n": 1}

    def rounded(metrics: dict) -> dict:
        return {k: pytest.approx(v, abs=1e-4) for k, v in metrics.items()}

    metrics = strict_json(paths.metrics(ONE))
    top1 = read_candidates(paths, ONE).query("kind == 'similar' and rank == 0").iloc[0]
    reranked = read_reranked(paths, ONE).query("rank == 0").iloc[0]
    assert {k: v for k, v in metrics.items() if k != "stages"} == rounded(
        expected(error(row.pred_lat, row.pred_lon))
    )
    assert metrics["stages"]["retrieval"] == rounded(expected(error(top1.lat, top1.lon)))
    assert metrics["stages"]["rerank"] == rounded(expected(error(reranked.lat, reranked.lon)))
    baselines = strict_json(paths.baseline_metrics(ONE))
    for method, scores in baselines.items():
        [guess] = pd.read_csv(paths.baseline_predictions(ONE, method)).itertuples()
        km = error(guess.pred_lat, guess.pred_lon)
        assert {k: scores[k] for k in expected(km)} == rounded(expected(km)), method


# --- Dagster --------------------------------------------------------------------------------


def test_an_absent_benchmark_partition_materializes_with_the_reason(tmp_path):
    from geoloc_assets.partitions import configured_benchmarks
    from tests.test_validation_dagster import build_data_assets, resources, temp_instance

    params = tiny_params()
    params["benchmarks"]["names"] = ["demo-street", ABSENT]
    partitions = configured_benchmarks(params["benchmarks"]["names"])

    @dg.asset(deps=["benchmark_manifest"], partitions_def=partitions)
    def after_manifest() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"ran": True})

    with temp_instance(tmp_path) as instance:
        result = dg.materialize(
            [*build_data_assets(params), after_manifest],
            instance=instance,
            resources=resources(tmp_path),
            selection=dg.AssetSelection.assets("benchmark_manifest", "after_manifest"),
            partition_key=ABSENT,
            raise_on_error=False,
        )
        logs = instance.all_logs(result.run_id)
    assert result.success
    warned = [e.user_message for e in logs if e.level == logging.WARNING]
    assert any("benchmark_manifest[im2gps3k] skipped" in m for m in warned), warned
    events = {e.asset_key.path[-1]: e for e in result.get_asset_materialization_events()}
    assert set(events) == {"benchmark_manifest", "after_manifest"}
    metadata = events["benchmark_manifest"].materialization.metadata
    assert params["data"]["im2gps3k_csv"] in metadata["skipped"].value
    assert metadata["rows"].value == 0
    [check] = result.get_asset_check_evaluations()
    assert check.passed and params["data"]["im2gps3k_csv"] in check.metadata["skipped"].value
