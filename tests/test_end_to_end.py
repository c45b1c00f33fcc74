"""The whole graph at tiny size: real Dagster instance, real MLflow sqlite store, real FAISS;
then what a changed setting re-runs, through params.yaml, the run config, and automation."""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml
from geopy.distance import geodesic as geopy_geodesic
from mlflow.tracking import MlflowClient

from geoloc_assets.definitions import build_definitions
from geoloc_assets.runner import (
    materialize_selection,
    project_instance,
    selected_keys,
)
from geoloc_assets.staleness import asset_states
from geoloc_core.lmm.stub_server import LmmStubServer
from geoloc_core.paths import STAGE_COLUMNS, ProjectPaths
from tests.asset_sets import BELOW_LMM, BELOW_MODEL, stale_partitions_after
from tests.automation_ticks import ticks_until_quiet
from tests.conftest import BENCHMARKS, SUITE_SECRET, files_holding, launchpad_run

METRIC_KEYS = {
    "acc_1km",
    "acc_25km",
    "acc_200km",
    "acc_750km",
    "acc_2500km",
    "median_km",
    "mean_km",
    "n",
    "stages",
    "confidence",  # the confidence radii' observed coverage (geoloc_core/confidence)
}
PER_BENCHMARK = {
    "benchmark_manifest",
    "baselines",
    "candidates",
    "rerank",
    "lmm_diversification",
    "lmm_reasoning",
    "verification",
    "metrics",
}
PER_SHARD = {"segmentation_cache", "backbone_features", "reference_embeddings"}
ASSETS = {
    "reference_manifest",
    "place_texts",
    "backbone_weights",
    "alignment_model",
    "retrieval_index",
    "report",
    "served_model",
    "confidence_calibration",
    *PER_BENCHMARK,
    *PER_SHARD,
}


def pending(root: Path) -> set[tuple[str, str | None]]:
    defs = build_definitions(root)
    states = asset_states(defs, project_instance(root), BENCHMARKS)
    return {(s.asset, s.partition) for s in states if s.status != "fresh"}


def materialize_stale(root: Path) -> list[str]:
    """What `geoloc materialize --stale` does; the assets it ran."""
    defs = build_definitions(root)
    instance = project_instance(root)
    names = {asset for asset, _ in pending(root)}
    keys = selected_keys(defs, [], sorted(names))
    outcomes = materialize_selection(defs, instance, keys, BENCHMARKS)
    assert all(o.success for o in outcomes), outcomes
    return sorted({a for o in outcomes for a in o.assets})


def edit_params(root: Path, section: str, **values) -> None:
    params_file = root / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params[section].update(values)
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture
def project(materialized_template, tmp_path, monkeypatch) -> Path:
    """A copy of the materialized project (instance and MLflow store included) per test."""
    root = tmp_path / "project"
    shutil.copytree(materialized_template, root)
    monkeypatch.setenv("DAGSTER_HOME", str(root / ".dagster"))
    return root


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.(\d+))?(?![\w.])")  # group 1: the decimals


def recomputed(table: pd.DataFrame, lat: str, lon: str, thresholds: list[float]) -> dict:
    """The metrics of one column pair, from scratch: geopy's geodesic per row, accuracy as the
    share strictly below each threshold (geoloc_core/geo/metrics.py), median, mean, count."""
    errors = [
        geopy_geodesic((t_lat, t_lon), (p_lat, p_lon)).km
        for t_lat, t_lon, p_lat, p_lon in zip(
            table["lat"], table["lon"], table[lat], table[lon], strict=True
        )
    ]
    n = len(errors)
    values = {f"acc_{t:g}km": 100.0 * sum(e < t for e in errors) / n for t in thresholds}
    values.update(median_km=statistics.median(errors), mean_km=statistics.fmean(errors), n=n)
    return values


def shows(line: str, value: float) -> bool:
    """Whether a number printed in the line is value rounded to that number's own decimals
    (a number printed without decimals must equal it)."""
    for match in NUMBER.finditer(re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", line)):  # 1,234.5
        decimals = len(match.group(1) or "")
        tolerance = 0.5 * 10**-decimals + 1e-9 if decimals else 0.0
        if abs(float(match.group(0)) - value) <= tolerance:
            return True
    return False


def check_metrics_and_report_against_the_predictions(root: Path) -> None:
    """metrics/<benchmark>.json recomputed from the predictions file; report.md carrying each
    benchmark's numbers on one line per row (whatever its layout); a map per benchmark."""
    paths = ProjectPaths(root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert params["evaluation"]["distance"] == "geodesic"  # what geopy's geodesic measures
    thresholds = params["evaluation"]["thresholds_km"]
    report = (paths.reports / "report.md").read_text()
    for benchmark in BENCHMARKS:
        table = pd.read_csv(paths.predictions(benchmark))
        metrics = json.loads(paths.metrics(benchmark).read_text())
        rows = {"decision": (metrics, recomputed(table, "pred_lat", "pred_lon", thresholds))}
        for stage, (lat, lon) in STAGE_COLUMNS.items():
            rows[stage] = (metrics["stages"][stage], recomputed(table, lat, lon, thresholds))
        for row, (found, expected) in rows.items():
            assert set(found) - {"stages", "confidence"} == set(expected), (benchmark, row)
            for key, value in expected.items():
                assert found[key] == pytest.approx(value, abs=1e-4), (benchmark, row, key)
            printed = [k for k in expected if k != "mean_km"]  # the report shows no mean
            lines = [
                line
                for line in report.splitlines()
                if all(shows(line, expected[key]) for key in printed)
            ]
            assert lines, f"report.md has no line with {benchmark}'s {row} numbers {expected}"
        assert benchmark in report
        picture = (paths.reports / f"map_{benchmark}.png").read_bytes()
        assert picture.startswith(PNG_SIGNATURE) and len(picture) > 10_000, benchmark


@pytest.mark.slow
def test_whole_graph_materializes_and_is_tracked(project):
    paths = ProjectPaths(project)
    sizes = {"validation": 18, "demo-street": 6, "demo-unseen": 6}
    for benchmark, n in sizes.items():
        metrics = json.loads(paths.metrics(benchmark).read_text())
        assert set(metrics) == METRIC_KEYS
        assert metrics["n"] == n
        assert set(metrics["stages"]) == {"retrieval", "rerank"}
        accs = [metrics[f"acc_{t}km"] for t in (1, 25, 200, 750, 2500)]
        assert accs == sorted(accs) and all(0 <= a <= 100 for a in accs)
    assert (paths.reports / "error_curves.png").stat().st_size > 10_000
    check_metrics_and_report_against_the_predictions(project)
    candidates = paths.candidates("demo-street").read_text().splitlines()
    assert len(candidates) == 1 + 6 * 20 * 2  # 20 similar and 20 dissimilar per query

    client = MlflowClient(paths.tracking_uri)
    experiment = client.get_experiment_by_name("geoloc")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    by_asset: dict[str, list] = {}
    for run in runs:
        if "dagster.asset_key" in run.data.tags:
            by_asset.setdefault(run.data.tags["dagster.asset_key"], []).append(run)
    expected = {a: 3 if a in PER_BENCHMARK else 2 if a in PER_SHARD else 1 for a in ASSETS}
    assert {a: len(r) for a, r in by_asset.items()} == expected
    for run in by_asset["metrics"]:
        benchmark = run.data.tags["dagster.partition"]
        on_disk = json.loads(paths.metrics(benchmark).read_text())
        assert run.data.metrics["acc_2500km"] == pytest.approx(on_disk["acc_2500km"])
        assert run.data.metrics["stage_retrieval.acc_2500km"] == pytest.approx(
            on_disk["stages"]["retrieval"]["acc_2500km"]
        )
    assert pending(project) == set()


@pytest.mark.slow
def test_eps_change_reruns_exactly_rerank_and_below(project):
    edit_params(project, "rerank", eps_km=5.0)
    # the served model bundles the rerank section: it is logged again, nothing else above; the
    # confidence radii are calibrated again on validation's re-ranked candidates
    expected = stale_partitions_after("rerank", BENCHMARKS)
    assert {asset for asset, _ in expected} == {
        "rerank", "lmm_reasoning", "confidence_calibration", "verification", "metrics",
        "report", "served_model",
    }
    assert pending(project) == expected
    ran = materialize_stale(project)
    assert ran == sorted({asset for asset, _ in expected})
    assert pending(project) == set()


@pytest.mark.slow
def test_variant_change_marks_everything_below_the_model_stale(project):
    edit_params(project, "model", variant="image-only")
    stale = {asset for asset, _ in pending(project)}
    assert stale == BELOW_MODEL
    assert {"alignment_model", "retrieval_index", "served_model"} <= stale
    assert not stale & {"backbone_weights", "backbone_features", "segmentation_cache"}


@pytest.mark.slow
def test_lmm_model_change_reruns_the_lmm_and_below(project):
    edit_params(project, "lmm", model="another-model")
    stale = {asset for asset, _ in pending(project)}
    assert stale == BELOW_LMM
    assert "candidates" not in stale


@pytest.mark.slow
def test_run_config_override_marks_downstream_stale(project):
    """As the launchpad does it: same code version, other config, so other content."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    evaluation = {**params["evaluation"], "distance": "haversine"}
    result = launchpad_run(project, "metrics", "demo-street", {"evaluation": evaluation})
    assert result.success
    assert pending(project) == {("report", None)}


@pytest.mark.slow
def test_automation_follows_a_changed_asset_downstream(project):
    """Dagster's own evaluation of the eager conditions, tick by tick with no run in between:
    after rerank is re-materialized with another eps, what follows it is requested for every
    benchmark, each step in a later tick than a step it reads through another run, and nothing
    above it."""
    defs = build_definitions(project)
    instance = project_instance(project)
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.total_requested == 0
    edit_params(project, "rerank", eps_km=5.0)
    defs = build_definitions(project)
    outcomes = materialize_selection(defs, instance, [dg.AssetKey("rerank")], BENCHMARKS)
    assert all(o.success for o in outcomes)
    ticks = ticks_until_quiet(defs, instance, first.cursor)
    # first the LMM reasoning (in each benchmark's run); the confidence radii read it through
    # another run, verification reads those: each waits for a later tick
    assert ticks[0] == {("lmm_reasoning", b) for b in BENCHMARKS}
    below = {(a, b) for a in ("lmm_reasoning", "verification", "metrics") for b in BENCHMARKS}
    # nothing above the re-rank (the served model bundles the rerank section: its code version
    # changed with the edit)
    unpartitioned = {("report", None), ("served_model", None), ("confidence_calibration", None)}
    assert below <= set().union(*ticks) <= below | unpartitioned


@pytest.mark.slow
def test_a_gps_gallery_joins_the_verification_pool(project):
    """An optional gallery (GeoCLIP ships a 100K one): its points closest to each image in the
    GPS space join the pool; only verification and below re-run."""
    gallery = project / "gallery.csv"
    gallery.write_text("LAT,LON\n" + "".join(f"{la},{lo}\n" for la, lo in GALLERY))
    edit_params(project, "verification", gallery="gallery.csv", gallery_top=3)
    assert materialize_stale(project) == [
        "confidence_calibration", "metrics", "report", "served_model", "verification"
    ]
    instance = project_instance(project)
    event = instance.get_latest_materialization_event(dg.AssetKey("verification"))
    metadata = event.asset_materialization.metadata
    assert metadata["pool_extra"].value == 3 * 6  # the partition materialized last: 6 queries


GALLERY = [(48.85, 2.35), (-33.87, 151.21), (35.68, 139.69), (-22.91, -43.17), (40.71, -74.0)]


@pytest.mark.slow
def test_lmm_modes_through_the_graph_against_the_test_server(project, monkeypatch):
    """Both LMM modes end to end against the local OpenAI-compatible server: G3's answers join
    the verification pool, DualGeo's answer becomes the decision, a re-run asks nothing, and
    the key set in the environment is written nowhere."""
    assert os.environ["GEOLOC_LMM_API_KEY"] == SUITE_SECRET  # the suite-wide fake key
    with LmmStubServer() as server:
        edit_params(
            project,
            "lmm",
            provider="openai",
            base_url=server.base_url,
            n=2,
            g3_rag_sizes=[0, 5],
        )
        ran = materialize_stale(project)
        assert {"lmm_diversification", "lmm_reasoning", "verification"} <= set(ran)
        paths = ProjectPaths(project)
        g3 = json.loads(paths.lmm_summary("demo-street", "g3").read_text())
        assert g3["skipped"] is False and g3["requests_sent"] == 6 * 2
        assert g3["answers_by_source"] == {"lmm-rag-5": 12, "lmm-zero-shot": 12}
        predictions = (paths.predictions("demo-street")).read_text()
        sent = server.stats()["requests"]

        again = materialize_selection(
            build_definitions(project),
            project_instance(project),
            [dg.AssetKey("lmm_diversification")],
            BENCHMARKS,
        )
        assert all(o.success for o in again)
        assert server.stats()["requests"] == sent  # every answer came from the cache

        edit_params(project, "lmm", mode="dualgeo")
        materialize_stale(project)
        reasoning = json.loads(
            paths.lmm_summary("demo-street", "dualgeo").read_text()
        )
        assert reasoning["skipped"] is False and reasoning["answers_kept"] == 6 * 2
        decided = (paths.predictions("demo-street")).read_text()
        assert decided != predictions and "lmm-dualgeo" in decided

    assert files_holding([project], SUITE_SECRET.encode()) == []
    client = MlflowClient(ProjectPaths(project).tracking_uri)
    for run in client.search_runs(
        [client.get_experiment_by_name("geoloc").experiment_id], max_results=1000
    ):
        recorded = json.dumps([run.data.params, run.data.tags, list(run.data.metrics)])
        assert SUITE_SECRET not in recorded
    instance = project_instance(project)
    for record in instance.get_run_records():
        for event in instance.all_logs(record.dagster_run.run_id):
            assert SUITE_SECRET not in str(event)
