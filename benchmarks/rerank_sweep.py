"""The re-rank's settings swept on one benchmark's candidates: DBSCAN at several eps, HDBSCAN at
several (min_cluster_size, min_samples), each against the retrieval order.

Reads a built project's candidates (artifacts/candidates/<benchmark>.csv, after `make demo` or
`dvc checkout`) and the benchmark's true coordinates, re-ranks every query under each setting
and scores the re-ranked top-1 as the evaluation does (% within params.yaml's thresholds, its
distance). Only the re-rank runs, so a sweep takes seconds; settings are chosen on validation,
never on a test benchmark. Also printed per row: the share of queries with a cluster, and how
often the re-rank changed the top-1.

    python benchmarks/rerank_sweep.py [--benchmark validation] [--project .]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from geoloc_core.data.manifest import read_manifest
from geoloc_core.geo.distance import distance_km
from geoloc_core.geo.metrics import accuracy_within
from geoloc_core.params import load_params
from geoloc_core.paths import ProjectPaths
from geoloc_core.rerank.dbscan import rerank_batch
from geoloc_core.rerank.settings import RerankSettings
from geoloc_core.steps.tables import read_candidates

REPO = Path(__file__).resolve().parent.parent
DBSCAN_EPS_KM = (1.0, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0, 200.0, 500.0)
DBSCAN_MIN_SAMPLES = (2, 3)
HDBSCAN_MIN_CLUSTER_SIZE = (2, 3, 4, 5, 6)
HDBSCAN_MIN_SAMPLES = (1, 2, 3, 4)


def candidate_matrix(
    paths: ProjectPaths, benchmark: str
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Query ids and their (n, k) similar candidates' lat/lon, best retrieval rank first."""
    table = read_candidates(paths, benchmark)
    similar = table[table["kind"] == "similar"].sort_values(["query_id", "rank"], kind="stable")
    queries = similar["query_id"].drop_duplicates().tolist()
    k = len(similar) // len(queries)
    lat = similar["lat"].to_numpy(np.float64).reshape(-1, k)
    lon = similar["lon"].to_numpy(np.float64).reshape(-1, k)
    return queries, lat, lon


def settings_grid() -> list[RerankSettings]:
    grid = [RerankSettings(method="none")]
    grid += [
        RerankSettings(method="dbscan", eps_km=eps, min_samples=samples)
        for samples in DBSCAN_MIN_SAMPLES
        for eps in DBSCAN_EPS_KM
    ]
    grid += [
        RerankSettings(method="hdbscan", min_cluster_size=size, min_samples=samples)
        for size in HDBSCAN_MIN_CLUSTER_SIZE
        for samples in HDBSCAN_MIN_SAMPLES
    ]
    return grid


def label(settings: RerankSettings) -> str:
    if settings.method == "none":
        return "retrieval order (no re-rank)"
    if settings.method == "dbscan":
        return f"dbscan eps {settings.eps_km:g} km, min_samples {settings.min_samples}"
    return (
        f"hdbscan min_cluster_size {settings.min_cluster_size}, "
        f"min_samples {settings.min_samples}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=REPO)
    parser.add_argument("--benchmark", default="validation")
    args = parser.parse_args()
    paths = ProjectPaths(args.project.resolve())
    params = load_params(paths.root)
    thresholds = params["evaluation"]["thresholds_km"]
    queries, lat, lon = candidate_matrix(paths, args.benchmark)
    truth = read_manifest(paths.benchmark_manifest(args.benchmark)).set_index("id")
    true_lat = truth.loc[queries, "lat"].to_numpy(np.float64)
    true_lon = truth.loc[queries, "lon"].to_numpy(np.float64)
    rows = np.arange(len(queries))
    print(
        f"{args.benchmark}: {len(queries)} queries, k = {lat.shape[1]}, model.variant "
        f"{params['model']['variant']}; re-ranked top-1, % within "
        f"{' / '.join(f'{t:g}' for t in thresholds)} km"
    )
    print("| setting | accuracy | queries with a cluster | top-1 changed | s |")
    print("|---|---|---|---|---|")
    for settings in settings_grid():
        start = time.perf_counter()
        order, _, centres = rerank_batch(lat, lon, settings)
        seconds = time.perf_counter() - start
        top = order[:, 0]
        errors = distance_km(
            true_lat, true_lon, lat[rows, top], lon[rows, top],
            method=params["evaluation"]["distance"],
        )
        accuracy = accuracy_within(errors, thresholds)
        cells = " / ".join(f"{accuracy[t]:.1f}" for t in thresholds)
        clustered = float(np.isfinite(centres[:, 0]).mean())
        changed = float((top != 0).mean())
        print(f"| {label(settings)} | {cells} | {clustered:.0%} | {changed:.0%} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
