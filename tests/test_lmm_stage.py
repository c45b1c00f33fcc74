"""run_lmm_stage on a small synthetic project against the local OpenAI-compatible test server:
provider none skips, an immediate rerun sends nothing, G3's RAG answers beat zero-shot ones,
DualGeo shows the re-ranked candidates, and missing inputs are counted rather than fatal.
The helpers here (a synthetic project, a stage section) serve the other test_lmm_* files."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from geoloc_core.data.manifest import write_manifest
from geoloc_core.geo.distance import haversine_km
from geoloc_core.lmm.settings import DEFAULTS
from geoloc_core.lmm.stub_server import LmmStubServer
from geoloc_core.paths import ANSWER_COLUMNS, ProjectPaths
from geoloc_core.steps.lmm import run_lmm_stage

BENCHMARK = "demo-street"
KEY_ENV = "GEOLOC_TEST_LMM_STAGE_KEY"
STAGE_KEY = "sk-test-lmm-stage"
TRUTH = [
    (48.8566, 2.3522, "Paris, Île-de-France, France"),
    (-33.8688, 151.2093, "Sydney, New South Wales, Australia"),
    (35.6762, 139.6503, "Tokyo, Japan"),
    (40.7128, -74.0060, "New York, New York, United States"),
    (-23.5505, -46.6333, "São Paulo, Brazil"),
    (30.0444, 31.2357, "Cairo, Egypt"),
]


def _png(path: Path, colour: tuple[int, int, int]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path.name


def _offset(lat: float, lon: float, km: float, rng: np.random.Generator) -> tuple[float, float]:
    north, east = rng.normal(0.0, km, 2)
    lat2 = lat + north / 111.2
    return lat2, lon + east / (111.2 * np.cos(np.radians(lat2)))


def make_project(root: Path, queries: int = 4, per_kind: int = 15, seed: int = 0) -> ProjectPaths:
    """Query photos at real cities; similar candidates within ~10 km of the truth, dissimilar
    ones near the antipode; a re-ranked file with the similar ones; a reference manifest."""
    rng = np.random.default_rng(seed)
    paths = ProjectPaths(root)
    bench_rows, ref_rows, cand_rows, rerank_rows = [], [], [], []
    for q in range(queries):
        lat, lon, place = TRUTH[q % len(TRUTH)]
        query_id = f"q{q:03d}"
        _png(root / "images" / f"{query_id}.png", (40 * q % 256, 90, 160))
        bench_rows.append(
            {
                "id": query_id,
                "image": f"images/{query_id}.png",
                "lat": lat,
                "lon": lon,
                "split": BENCHMARK,
                "source": "demo",
            }
        )
        for kind in ("similar", "dissimilar"):
            for rank in range(per_kind):
                if kind == "similar":
                    c_lat, c_lon = _offset(lat, lon, 8.0, rng)
                    c_place = place
                else:
                    c_lat, c_lon = _offset(-lat, lon + 180.0 if lon < 0 else lon - 180.0, 50, rng)
                    c_place = ""
                ref_id = f"r{q:03d}{kind[0]}{rank:02d}"
                _png(root / "images" / f"{ref_id}.png", (rank * 10, 20 * q % 256, 30))
                ref_rows.append(
                    {
                        "id": ref_id,
                        "image": f"images/{ref_id}.png",
                        "lat": c_lat,
                        "lon": c_lon,
                        "split": "reference",
                        "source": "demo",
                    }
                )
                cand_rows.append(
                    {
                        "query_id": query_id,
                        "kind": kind,
                        "rank": rank,
                        "ref_id": ref_id,
                        "lat": c_lat,
                        "lon": c_lon,
                        "score": 1.0 - rank / 100,
                        "place": c_place,
                    }
                )
                if kind == "similar":
                    rerank_rows.append(
                        {
                            "query_id": query_id,
                            "rank": rank,
                            "orig_rank": rank,
                            "ref_id": ref_id,
                            "lat": c_lat,
                            "lon": c_lon,
                            "score": 1.0 - rank / 100,
                            "place": c_place,
                            "cluster": 0,
                        }
                    )
    write_manifest(pd.DataFrame(bench_rows), paths.benchmark_manifest(BENCHMARK))
    write_manifest(pd.DataFrame(ref_rows), paths.reference_manifest)
    for table, path in (
        (cand_rows, paths.candidates(BENCHMARK)),
        (rerank_rows, paths.reranked(BENCHMARK)),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(table).to_csv(path, index=False)
    return paths


def stage_section(server: LmmStubServer | None, **overrides) -> dict:
    """The defaults with provider openai at the test server (a local URL when there is none)."""
    values = copy.deepcopy(DEFAULTS) | {
        "provider": "openai",
        "model": "test-vlm",
        "base_url": server.base_url if server else "http://127.0.0.1:9/v1",
        "api_key_env": KEY_ENV,
        "n": 3,
        "max_concurrency": 4,
        "backoff_s": 0.01,
        "timeout_s": 2.0,
    }
    return values | overrides


def quiet(_: str) -> None:
    pass


def read_answers(paths: ProjectPaths, mode: str = "g3") -> pd.DataFrame:
    return pd.read_csv(paths.lmm_answers(BENCHMARK, mode), dtype={"query_id": str})


@pytest.fixture(autouse=True)
def api_key(monkeypatch) -> str:
    monkeypatch.setenv(KEY_ENV, STAGE_KEY)
    return STAGE_KEY


@pytest.fixture
def server():
    with LmmStubServer() as running:
        yield running


@pytest.fixture
def project(tmp_path) -> ProjectPaths:
    return make_project(tmp_path)


def test_provider_none_writes_an_empty_answers_file(tmp_path):
    paths = ProjectPaths(tmp_path)  # no inputs at all: none needs none
    summary = run_lmm_stage(paths, BENCHMARK, copy.deepcopy(DEFAULTS), log=quiet)
    assert summary["skipped"] is True and summary["provider"] == "none"
    assert summary["requests_sent"] == 0 and summary["answers_kept"] == 0
    answers = read_answers(paths)
    assert list(answers.columns) == list(ANSWER_COLUMNS) and answers.empty
    assert json.loads(paths.lmm_summary(BENCHMARK).read_text())["skipped"] is True


def test_g3_run_then_immediate_rerun_sends_nothing(project, server):
    section = stage_section(server)
    first = run_lmm_stage(project, BENCHMARK, section, progress=False, log=quiet)
    prompts = 4 * 4  # 4 queries x sizes 0, 5, 10, 15
    assert first["prompts"] == prompts and first["prompts_complete"] == prompts
    assert first["requests_sent"] == prompts == server.stats()["requests"]
    assert first["answers_kept"] == prompts * 3 and first["drops_total"] == 0
    assert first["tokens_in"] > 0 and first["tokens_out"] > 0 and first["estimated_cost"] > 0
    assert first["answers_by_source"] == {
        "lmm-rag-10": 12,
        "lmm-rag-15": 12,
        "lmm-rag-5": 12,
        "lmm-zero-shot": 12,
    }
    answers_bytes = project.lmm_answers(BENCHMARK).read_bytes()

    again = run_lmm_stage(project, BENCHMARK, section, progress=False, log=quiet)
    assert server.stats()["requests"] == prompts  # not one more
    assert again["requests_sent"] == 0 and again["cache_hits"] == prompts * 3
    assert project.lmm_answers(BENCHMARK).read_bytes() == answers_bytes

    answers = read_answers(project)
    assert list(answers.columns) == list(ANSWER_COLUMNS)
    assert sorted(answers["sample"].unique()) == [0, 1, 2]


def test_rag_answers_are_closer_to_the_truth_than_zero_shot(tmp_path, server):
    paths = make_project(tmp_path, queries=6)
    run_lmm_stage(paths, BENCHMARK, stage_section(server), progress=False, log=quiet)
    answers = read_answers(paths)
    truth = pd.DataFrame(
        [(f"q{q:03d}", lat, lon) for q, (lat, lon, _) in enumerate(TRUTH)],
        columns=["query_id", "true_lat", "true_lon"],
    )
    joined = answers.merge(truth, on="query_id")
    joined["km"] = haversine_km(
        joined["lat"], joined["lon"], joined["true_lat"], joined["true_lon"]
    )
    median = joined.groupby("source")["km"].median()
    assert median["lmm-rag-5"] < 50 and median["lmm-rag-15"] < 50
    assert median["lmm-zero-shot"] > 500
    assert median["lmm-rag-5"] * 10 < median["lmm-zero-shot"]


def test_dualgeo_answers_from_the_reranked_candidates(project, server):
    (project.root / "images" / "r000s01.png").write_bytes(b"")  # shown without its photo
    section = stage_section(server, mode="dualgeo", dualgeo_top_m=4)
    summary = run_lmm_stage(project, BENCHMARK, section, progress=False, log=quiet)
    assert summary["mode"] == "dualgeo" and summary["prompts"] == 4
    assert summary["answers_by_source"] == {"lmm-dualgeo": 12}
    assert summary["reference_images_unreadable"] == 1
    answers = read_answers(project, "dualgeo").merge(
        pd.DataFrame(
            [(f"q{q:03d}", t[0], t[1]) for q, t in enumerate(TRUTH)],
            columns=["query_id", "true_lat", "true_lon"],
        ),
        on="query_id",
    )
    km = haversine_km(answers["lat"], answers["lon"], answers["true_lat"], answers["true_lon"])
    assert float(np.median(km)) < 50


def test_short_candidate_lists_and_unreadable_images_are_counted(project, server):
    (project.root / "images" / "q001.png").write_bytes(b"not an image")
    section = stage_section(server, g3_rag_sizes=[0, 5, 20])
    logs: list[str] = []
    summary = run_lmm_stage(project, BENCHMARK, section, progress=False, log=logs.append)
    assert summary["prompts_skipped_short"] == 4  # 15 candidates per kind < 20
    assert any("fewer than 20 similar or dissimilar" in line for line in logs)
    assert summary["prompts"] == 8 and summary["prompts_unbuildable"] == 2
    assert summary["errors"] == {"prompt not built: ImageDecodeError": 2}
    assert summary["answers_kept"] == 6 * 3
    assert set(read_answers(project)["query_id"]) == {"q000", "q002", "q003"}


def test_missing_candidates_file_names_the_asset(tmp_path, server):
    paths = make_project(tmp_path)
    paths.candidates(BENCHMARK).unlink()
    with pytest.raises(Exception, match="materialize the candidates asset"):
        run_lmm_stage(paths, BENCHMARK, stage_section(server), progress=False, log=quiet)
