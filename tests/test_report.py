"""The report step on a tiny hand-made run: tables with the right numbers in HTML and Markdown,
embedded pictures, published rows marked with their sources, and plot data that matches an
independent computation from the per-image errors."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from geopy.distance import geodesic

from geoloc_core.paths import ProjectPaths
from geoloc_core.report.coastlines import coastlines
from geoloc_core.report.published import MARK, read_published
from geoloc_core.steps.evaluate import evaluate_benchmark
from geoloc_core.steps.report import build_report

THRESHOLDS = [1, 25, 200, 750, 2500]
# decision errors: 0 km, ~11 km, ~442 km, ~4430 km (latitude offsets at the equator)
OFFSETS_DEG = [0.0, 0.1, 4.0, 40.0]
DECISION_ACC = ["25.00", "50.00", "50.00", "75.00", "75.00"]
SETTINGS = {
    "model": {"variant": "dualgeo"},
    "embeddings": {"parts": "auto"},
    "rerank": {"method": "dbscan", "eps_km": 50.0, "min_samples": 2},
    "verification": {"method": "verify", "pool_size": 20, "gallery": None, "gallery_top": 0},
    "lmm": {"provider": "openai", "mode": "dualgeo", "model": "gpt-4o"},
}
G3_IM2GPS3K = ["16.65", "40.94", "55.56", "71.24", "84.68"]  # arXiv:2405.14702, Table 1


class TableReader(HTMLParser):
    """Rows of every <table>, as lists of cell texts, keyed by the table's data-title."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self._title: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "table":
            self._title = values.get("data-title") or ""
            self.tables[self._title] = []
        elif tag == "tr" and self._title is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "img":
            self.images.append(values.get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._title is not None:
            self.tables[self._title].append(self._row)
            self._row = None
        elif tag == "table":
            self._title = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _predictions(benchmark: str) -> pd.DataFrame:
    lat = np.array([10.0, -20.0, 35.0, 5.0])
    lon = np.array([20.0, 120.0, -70.0, 179.5])
    return pd.DataFrame(
        {
            "id": [f"{benchmark}-{i}" for i in range(4)],
            "lat": lat,
            "lon": lon,
            "pred_lat": lat + np.array(OFFSETS_DEG),
            "pred_lon": lon,
            "score": 0.5,
            "source": "rerank",
            "top1_lat": lat,  # the retrieval top-1 is always exact: 100 % everywhere
            "top1_lon": lon,
            "rerank_lat": lat + 40.0,  # the re-ranked top-1 always ~4430 km off: 0 %
            "rerank_lon": lon,
        }
    )


def _write_run(root: Path, benchmark: str) -> ProjectPaths:
    paths = ProjectPaths(root)
    table = _predictions(benchmark)
    paths.predictions(benchmark).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(paths.predictions(benchmark), index=False)
    evaluate_benchmark(paths, benchmark, {"thresholds_km": THRESHOLDS, "distance": "geodesic"})
    # a baseline with per-image predictions (random: all wrong by 90 degrees) and one without
    baseline = table[["id", "lat", "lon"]].assign(
        pred_lat=table["lat"] - 90.0 * np.sign(table["lat"]), pred_lon=table["lon"]
    )
    folder = root / "artifacts" / "baselines" / benchmark
    folder.mkdir(parents=True, exist_ok=True)
    baseline.to_csv(folder / "random.csv", index=False)
    summary = {
        "random": {**{f"acc_{t}km": 0.0 for t in THRESHOLDS}, "median_km": 9000.0, "n": 4},
        "raw_pixels": {**{f"acc_{t}km": 50.0 for t in THRESHOLDS}, "median_km": 1.0, "n": 4},
    }
    (root / "metrics" / "baselines").mkdir(parents=True, exist_ok=True)
    (root / "metrics" / "baselines" / f"{benchmark}.json").write_text(json.dumps(summary))
    return paths


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> ProjectPaths:
    root = tmp_path_factory.mktemp("report")
    for benchmark in ("validation", "im2gps3k"):
        paths = _write_run(root, benchmark)
    benchmarks = ["validation", "im2gps3k"]
    build_report(paths, benchmarks, THRESHOLDS, "geodesic", dict.fromkeys(benchmarks, SETTINGS))
    return paths


def _html(paths: ProjectPaths) -> TableReader:
    reader = TableReader()
    reader.feed((paths.reports / "report.html").read_text(encoding="utf-8"))
    return reader


def _row(rows: list[list[str]], label: str) -> list[str]:
    matches = [r for r in rows if r and r[0] == label]
    assert len(matches) == 1, f"{label!r} in {[r[0] for r in rows]}"
    return matches[0]


def _accuracies(header: list[str], row: list[str]) -> list[str]:
    start = header.index("< 1 km")
    return row[start : start + len(THRESHOLDS)]


def test_html_tables_hold_each_stage_with_its_numbers_and_settings(report):
    tables = _html(report).tables
    rows = tables["validation"]
    header = rows[0]
    decision = _row(rows, "+ LMM reasoning (decision)")
    assert _accuracies(header, decision) == DECISION_ACC
    assert _accuracies(header, _row(rows, "retrieval top-1")) == ["100.00"] * 5
    assert _accuracies(header, _row(rows, "+ re-rank")) == ["0.00"] * 5
    assert decision[header.index("variant")] == "dualgeo"
    assert decision[header.index("re-rank")] == "dbscan eps 50 km, min 2"
    assert decision[header.index("verification")] == "verify, pool 20"
    assert decision[header.index("LMM")] == "dualgeo via openai (gpt-4o)"
    assert _row(rows, "retrieval top-1")[header.index("re-rank")] == "—"
    assert _accuracies(header, _row(rows, "baseline: raw_pixels")) == ["50.00"] * 5
    assert [r[0] for r in rows[1:]] == [
        "retrieval top-1",
        "+ re-rank",
        "+ LMM reasoning (decision)",
        "baseline: random",
        "baseline: raw_pixels",
    ]


def test_published_rows_only_beside_their_benchmark_and_marked_with_sources(report):
    tables = _html(report).tables
    assert not any(MARK in r for r in tables["validation"])
    rows = tables["im2gps3k"]
    g3 = _row(rows, "G3 (GPT-4V)")
    assert MARK in g3
    assert _accuracies(rows[0], g3) == G3_IM2GPS3K
    published = [r for r in rows if MARK in r]
    methods = {r[0] for r in published}
    assert {"G3 (GPT-4V)", "Img2Loc (GPT-4V)", "GeoCLIP", "PIGEON (PIGEOTTO)"} <= methods
    assert all("arXiv:" in r[-1] for r in published)
    # YFCC4K is not a benchmark of this report: its rows go to a table of their own
    other = tables["published results (other data)"]
    assert {r[1] for r in other[1:]} == {"yfcc4k"}
    assert all(MARK in r for r in other[1:])


def test_html_is_self_contained_with_embedded_pictures(report):
    text = (report.reports / "report.html").read_text(encoding="utf-8")
    images = _html(report).images
    assert len(images) == 5  # overview, and a CDF and a map per benchmark
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r'(?:src|href)="(?!data:)', text)
    assert "<script" not in text and "<link" not in text


def test_markdown_holds_the_same_numbers(report):
    text = (report.reports / "report.md").read_text(encoding="utf-8")
    assert "| **+ LMM reasoning (decision)** |" in text
    assert " | ".join(DECISION_ACC) in text
    assert "| *G3 (GPT-4V)* | " + MARK in text
    assert " | ".join(G3_IM2GPS3K) in text
    for name in ("cdf_validation.png", "map_validation.png", "error_curves.png"):
        assert f"]({name})" in text
        assert (report.reports / name).stat().st_size > 10_000


def test_cdf_plot_data_equals_an_independent_computation(report):
    table = _predictions("validation")
    errors = np.array(
        [
            geodesic((a, b), (c, d)).km
            for a, b, c, d in table[["lat", "lon", "pred_lat", "pred_lon"]].to_numpy()
        ]
    )
    cdf = pd.read_csv(report.root / "metrics" / "plots" / "cdf_validation.csv")
    assert list(cdf.columns) == ["error_km", "fraction"]
    np.testing.assert_allclose(cdf["error_km"], np.sort(errors), atol=1e-3)
    expected = [(errors <= x + 1e-3).mean() for x in cdf["error_km"]]
    np.testing.assert_allclose(cdf["fraction"], expected, atol=1e-12)
    assert cdf["fraction"].iloc[-1] == 1.0


def test_accuracy_plot_data_matches_the_metrics(report):
    accuracy = pd.read_csv(report.root / "metrics" / "plots" / "accuracy_validation.csv")
    assert accuracy["threshold_km"].tolist() == THRESHOLDS
    assert accuracy["decision"].tolist() == [float(v) for v in DECISION_ACC]
    assert accuracy["retrieval_top1"].tolist() == [100.0] * 5
    assert accuracy["baseline_random"].tolist() == [0.0] * 5


def test_published_file_rows_are_complete_and_sourced():
    rows = read_published()
    methods = {"G3 (GPT-4V)", "Img2Loc (GPT-4V)", "GeoCLIP", "PIGEON (PIGEOTTO)"}
    methods |= {"GeoRanker", "GeoRouter", "DualGeo"}
    for benchmark in ("im2gps3k", "yfcc4k"):
        assert methods <= {r.method for r in rows if r.benchmark == benchmark}
    assert all(re.search(r"arXiv:\d{4}\.\d{5}", r.source) for r in rows)
    yfcc_g3 = next(r for r in rows if r.method == "G3 (GPT-4V)" and r.benchmark == "yfcc4k")
    assert [yfcc_g3.accuracy(t) for t in THRESHOLDS] == [23.99, 35.89, 46.98, 64.26, 78.15]


def test_coastlines_come_from_the_land_mask():
    coast = coastlines()
    rows, cols = coast.land.shape
    assert cols == 2 * rows

    def land(lat: float, lon: float) -> bool:
        return bool(coast.land[int((90 - lat) / 180 * rows), int((lon + 180) / 360 * cols)])

    assert land(48.86, 2.35) and land(-23.5, 133.0) and land(40.0, -100.0)  # Paris, Australia
    assert not land(0.0, -140.0) and not land(-40.0, 0.0)  # Pacific, South Atlantic
    assert 0.25 < coast.land.mean() < 0.40
    assert len(coast.lines) > 300
    for line in coast.lines:
        assert np.abs(line[:, 0]).max() <= 180 and np.abs(line[:, 1]).max() <= 90


def test_map_draws_an_antimeridian_crossing_the_short_way():
    from geoloc_core.report.figures import _segments

    crossing = pd.DataFrame({"lat": [0.0], "lon": [179.0], "pred_lat": [1.0], "pred_lon": [-179.0]})
    segments = _segments(crossing)
    assert segments.shape == (2, 2, 2)
    np.testing.assert_allclose(segments[0], [[179.0, 0.0], [181.0, 1.0]])  # leaves on the right
    np.testing.assert_allclose(segments[1], [[-181.0, 0.0], [-179.0, 1.0]])  # enters on the left


def test_a_benchmark_without_images_is_reported_as_skipped(tmp_path):
    """yfcc4k absent: its section names the reason and keeps the published rows; no curve,
    map or plot data is made for it, and the other benchmark's report is complete."""
    paths = _write_run(tmp_path, "validation")
    empty = _predictions("yfcc4k").iloc[:0]
    empty.to_csv(paths.predictions("yfcc4k"), index=False)
    evaluate_benchmark(paths, "yfcc4k", {"thresholds_km": THRESHOLDS, "distance": "geodesic"})
    reason = json.loads((tmp_path / "metrics" / "yfcc4k.json").read_text())["skipped"]
    benchmarks = ["validation", "yfcc4k"]
    build_report(paths, benchmarks, THRESHOLDS, "geodesic", dict.fromkeys(benchmarks, SETTINGS))
    page = (paths.reports / "report.html").read_text(encoding="utf-8")
    assert "yfcc4k (0 images)" in page and reason in page
    tables = _html(paths).tables
    title = next(t for t in tables if "yfcc4k" in t)
    g3 = _row(tables[title], "G3 (GPT-4V)")
    assert "23.99" in g3 and "78.15" in g3  # G3's published YFCC4k row, 1 and 2500 km
    assert not (paths.reports / "cdf_yfcc4k.png").exists()
    assert not (paths.reports / "map_yfcc4k.png").exists()
    assert not (tmp_path / "metrics" / "plots" / "cdf_yfcc4k.csv").exists()
    assert (paths.reports / "map_validation.png").is_file()
