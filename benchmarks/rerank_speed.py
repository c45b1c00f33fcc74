"""DualGeo's clustering re-rank: ours, all queries at once, against DualGeo's published loop.

The peer does what DualGeo's published rerank_geo_cluster.py does, per query: scikit-learn's
DBSCAN (ball tree, haversine, eps / 6371 km), the largest cluster by numpy's unique-label
counts, its centre the arithmetic mean of the members' degrees (of all candidates when no
cluster forms), a plain-Python haversine (R = 6371 km) from every candidate to that centre, and
numpy's default (unstable) argsort. It is written here from that description.

Ours (geoloc_core.rerank.dbscan.rerank_batch) finds the same DBSCAN clusters for every query in
one pass (rerank/dbscan_batch.py), takes the spherical mean of the largest cluster, sorts stably
(the retrieval rank breaks ties) and keeps the retrieval order when no cluster forms.

Candidates: the demo's real retrieval candidates (artifacts/candidates/*.csv, k = 20, present
after `make demo` or `dvc checkout`), and synthetic retrieval-like sets at k = 20 and k = 100.
For each set: ms per query of both (ours: the whole set in one call; the peer: its loop over the
queries; medians of repeated runs), whether the clusters are identical on every query, and
where the top-1 coordinates differ, which rule made them differ:
- no cluster: ours keeps the retrieval order, the peer sorts by distance to the mean of all;
- centre: the same cluster, but the arithmetic-mean centre puts another candidate nearest
  (ours re-run with the peer's centre picks the peer's top-1);
- ties: the two top-1 candidates are equally far from the centre (the sort's tie rule);
- cluster tie: two clusters equally large, the peer's first by label and ours the one holding
  the best-ranked candidate;
- unexplained: none of these (expected 0).
Last, a dateline case where the arithmetic-mean centre lands on the wrong side of the Earth.

    python benchmarks/rerank_speed.py [--queries-k20 600] [--queries-k100 200] [--repeats 3]

Not a test: it prints numbers and ratios.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from bench_rows import Row, bench_parser, print_and_write
from sklearn.cluster import DBSCAN

from geoloc_core.geo.distance import haversine_km
from geoloc_core.geo.spherical import spherical_means
from geoloc_core.rerank.dbscan import DISTANCE_TIE_KM, rerank_batch, rerank_one
from geoloc_core.rerank.settings import RerankSettings

SETTINGS = RerankSettings(method="dbscan", eps_km=50.0, min_samples=2)  # DualGeo's values
PEER_EARTH_RADIUS_KM = 6371.0  # the published code's radius (ours: the IUGG mean, 6371.0088)
KM_PER_DEGREE = 111.195  # along a meridian, on the mean sphere
REPO = Path(__file__).resolve().parent.parent
DEMO_BENCHMARKS = ("validation", "demo-street", "demo-unseen")
SECTION = "2 retrieval"
CAUSES = ("no cluster", "centre", "ties", "cluster tie", "unexplained")


# --- the peer: DualGeo's published loop -------------------------------------------------------


def peer_haversine_km(a: tuple[float, float], b: Sequence[float]) -> float:
    """Great-circle km between two (lat, lon) in degrees: plain Python, R = 6371 km."""
    phi1, lam1, phi2, lam2 = (math.radians(v) for v in (a[0], a[1], b[0], b[1]))
    h = (
        math.sin((phi2 - phi1) / 2) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin((lam2 - lam1) / 2) ** 2
    )
    return 2 * math.asin(math.sqrt(h)) * PEER_EARTH_RADIUS_KM


def peer_rerank(
    coords: list[tuple[float, float]], eps_km: float, min_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """One query as the published loop does it: (new order of the indices, DBSCAN labels)."""
    points = np.array(coords)
    labels = DBSCAN(
        eps=eps_km / PEER_EARTH_RADIUS_KM,
        min_samples=min_samples,
        algorithm="ball_tree",
        metric="haversine",
    ).fit_predict(np.radians(points))
    values, counts = np.unique(labels, return_counts=True)
    clustered = values != -1
    if clustered.any():
        largest = values[clustered][np.argmax(counts[clustered])]
        centre = points[labels == largest].mean(axis=0)
    else:
        centre = points.mean(axis=0)
    distances = np.array([peer_haversine_km(c, centre) for c in coords])
    return np.argsort(distances), labels


# --- candidate sets ---------------------------------------------------------------------------


def demo_candidates(root: Path) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """(n, 20) lat/lon of the demo's similar candidates over its benchmarks, or None if absent."""
    lats, lons, names = [], [], []
    for name in DEMO_BENCHMARKS:
        path = root / "artifacts" / "candidates" / f"{name}.csv"
        if not path.is_file():
            continue
        table = pd.read_csv(path, dtype={"query_id": str, "kind": str})
        similar = table[table["kind"] == "similar"].sort_values(
            ["query_id", "rank"], kind="stable"
        )
        k = int(similar.groupby("query_id").size().iloc[0])
        lats.append(similar["lat"].to_numpy(np.float64).reshape(-1, k))
        lons.append(similar["lon"].to_numpy(np.float64).reshape(-1, k))
        names.append(f"{name} {lats[-1].shape[0]}")
    if not lats:
        return None
    return np.concatenate(lats), np.concatenate(lons), names


def retrieval_like(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, k) candidates: 1-4 sites of sigma 3-25 km near one region, ~30 % outliers, and each
    site's reference views sharing their coordinates now and then (as the demo's do); one query
    in ten is all outliers (a hard photo: retrieval found no consensus)."""
    lat = np.empty((n, k))
    lon = np.empty((n, k))
    for q in range(n):
        region = rng.uniform(-55, 55), rng.uniform(-150, 150)
        n_sites = int(rng.integers(1, 5))
        sites_lat = region[0] + rng.normal(0, 2.0, n_sites)
        sites_lon = region[1] + rng.normal(0, 2.0, n_sites)
        site = rng.choice(n_sites, size=k, p=rng.dirichlet(np.ones(n_sites)))
        sigma_km = rng.uniform(3, 25, n_sites)[site]
        lat[q] = sites_lat[site] + rng.normal(0, 1, k) * sigma_km / KM_PER_DEGREE
        lon[q] = sites_lon[site] + rng.normal(0, 1, k) * sigma_km / (
            KM_PER_DEGREE * np.cos(np.radians(lat[q]))
        )
        at_site = rng.random(k) < 0.3  # some views carry their site's exact coordinates
        lat[q, at_site], lon[q, at_site] = sites_lat[site[at_site]], sites_lon[site[at_site]]
        outliers = rng.random(k) < (1.0 if rng.random() < 0.1 else 0.3)
        lat[q, outliers] = rng.uniform(-60, 60, int(outliers.sum()))
        lon[q, outliers] = rng.uniform(-170, 170, int(outliers.sum()))
    return lat, lon


# --- the comparison ---------------------------------------------------------------------------


@dataclass
class Comparison:
    ours_ms: float  # per query: the whole set in one rerank_batch call, median of runs
    ours_one_ms: float  # per query: rerank_one called per query, median of runs
    peer_ms: float  # per query: the published loop over the set, median of runs
    same_clusters: int
    same_top1: int
    causes: Counter


def per_query_ms(work: Callable[[], object], n: int, repeats: int) -> float:
    work()  # warm-up: imports, caches
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        runs.append(1e3 * (time.perf_counter() - start) / n)
    return statistics.median(runs)


def compare(lat: np.ndarray, lon: np.ndarray, repeats: int) -> Comparison:
    n = lat.shape[0]
    eps, samples = SETTINGS.eps_km, SETTINGS.min_samples
    coords = [list(zip(lat[q].tolist(), lon[q].tolist(), strict=True)) for q in range(n)]

    def peer_all() -> list[tuple[np.ndarray, np.ndarray]]:
        return [peer_rerank(c, eps, samples) for c in coords]

    def ours_one_each() -> None:
        for q in range(n):
            rerank_one(lat[q], lon[q], eps, samples)

    peer_ms = per_query_ms(peer_all, n, repeats)
    ours_ms = per_query_ms(lambda: rerank_batch(lat, lon, SETTINGS), n, max(repeats, 5))
    ours_one_ms = per_query_ms(ours_one_each, n, repeats)
    peer = peer_all()
    order, labels, centres = rerank_batch(lat, lon, SETTINGS)
    same_clusters, same_top1, causes = 0, 0, Counter({cause: 0 for cause in CAUSES})
    for q in range(n):
        peer_order, peer_labels = peer[q]
        same_clusters += bool((peer_labels == labels[q]).all())
        ours_top, peer_top = int(order[q, 0]), int(peer_order[0])
        if (lat[q, ours_top], lon[q, ours_top]) == (lat[q, peer_top], lon[q, peer_top]):
            same_top1 += 1
        else:
            causes[why_top1_differs(lat[q], lon[q], labels[q], centres[q], peer_top)] += 1
    return Comparison(ours_ms, ours_one_ms, peer_ms, same_clusters, same_top1, causes)


def why_top1_differs(
    lat: np.ndarray, lon: np.ndarray, labels: np.ndarray, centre: np.ndarray, peer_top: int
) -> str:
    """The rule that makes the two top-1 candidates differ, for one query whose clusters match."""
    if not (labels >= 0).any():
        return "no cluster"
    values, counts = np.unique(labels[labels >= 0], return_counts=True)
    peer_cluster = values[np.argmax(counts)]
    ours_centre = spherical_means(lat[None], lon[None], (labels == peer_cluster)[None])
    if float(haversine_km(ours_centre[0][0], ours_centre[1][0], *centre)) > 1e-9:
        return "cluster tie"
    members = labels == peer_cluster
    arithmetic = (lat[members].mean(), lon[members].mean())
    distance = haversine_km(lat, lon, *arithmetic)
    with_peer_centre = int(np.argsort(np.rint(distance / DISTANCE_TIE_KM), kind="stable")[0])
    if (lat[with_peer_centre], lon[with_peer_centre]) == (lat[peer_top], lon[peer_top]):
        return "centre"
    if abs(distance[with_peer_centre] - distance[peer_top]) <= DISTANCE_TIE_KM:
        return "ties"
    return "unexplained"


def dateline_case() -> tuple[str, str, bool, bool]:
    """A cluster across the dateline: the arithmetic mean puts its centre near longitude 0."""
    rng = np.random.default_rng(1)
    cluster_lat = -17.0 + rng.normal(0, 0.05, 8)  # Fiji, astride the 180th meridian
    cluster_lon = (180.0 + rng.normal(0, 0.08, 8) + 180.0) % 360.0 - 180.0
    lat = np.concatenate([[35.0, -33.9], cluster_lat, [5.0]])
    lon = np.concatenate([[139.7, 18.4], cluster_lon, [-0.2]])  # Tokyo, Cape Town, ..., Gulf
    in_cluster = np.zeros(lat.size, dtype=bool)
    in_cluster[2:10] = True
    ours = rerank_one(lat, lon, SETTINGS.eps_km, SETTINGS.min_samples)
    peer, _ = peer_rerank(list(zip(lat, lon, strict=True)), SETTINGS.eps_km, SETTINGS.min_samples)
    assert ours.centre is not None
    peer_centre = (float(cluster_lat.mean()), float(cluster_lon.mean()))
    ours_miss = float(haversine_km(*ours.centre, -17.0, 180.0))
    peer_miss = float(haversine_km(*peer_centre, -17.0, 180.0))
    ours_ok = bool(in_cluster[ours.order[:8]].all())
    peer_ok = bool(in_cluster[peer[:8]].all())
    ours_text = f"centre ({ours.centre[0]:.2f}, {ours.centre[1]:.2f}), {ours_miss:.0f} km off"
    peer_text = f"centre ({peer_centre[0]:.2f}, {peer_centre[1]:.2f}), {peer_miss:,.0f} km off"
    return ours_text, peer_text, ours_ok, peer_ok


def rows_for(label: str, k: int, lat: np.ndarray, lon: np.ndarray, repeats: int) -> list[Row]:
    n = lat.shape[0]
    result = compare(lat, lon, repeats)
    ratio = result.peer_ms / result.ours_ms
    one_ratio = result.peer_ms / result.ours_one_ms
    causes = ", ".join(f"{cause} {count}" for cause, count in result.causes.items())
    print(f"{label}: {n} queries, k={k}; top-1 differs: {causes}")
    values = {
        "k": k,
        "queries": n,
        "ours_ms": result.ours_ms,
        "ours_one_ms": result.ours_one_ms,
        "peer_ms": result.peer_ms,
        "same_clusters": result.same_clusters,
        "same_top1": result.same_top1,
        "causes": dict(result.causes),
    }
    return [
        Row(
            SECTION,
            f"re-rank ms/query, k={k}, {label}: rerank_batch (all {n} queries in one call) vs "
            "DualGeo's published loop",
            f"{result.ours_ms:.3f}",
            f"{result.peer_ms:.2f}",
            f"{ratio:.0f}x faster",
            ">= 10x" if k == 20 else "report",
            ("yes" if ratio >= 10 else "NO") if k == 20 else "—",
            values,
        ),
        Row(
            SECTION,
            f"re-rank ms/query, k={k}, {label}: rerank_one (one call per query, as "
            "`geoloc predict` does) vs the published loop",
            f"{result.ours_one_ms:.3f}",
            f"{result.peer_ms:.2f}",
            f"{one_ratio:.1f}x faster",
            "report",
        ),
        Row(
            SECTION,
            f"re-rank k={k}, {label}: queries with the peer's clusters / top-1 coordinates "
            f"(where the top-1 differs, the cause: {causes})",
            f"{result.same_clusters}/{n} / {result.same_top1}/{n}",
            goal="every query's clusters; no unexplained top-1",
            met="yes"
            if result.same_clusters == n and result.causes["unexplained"] == 0
            else "NO",
        ),
    ]


def run(
    queries_k20: int = 600, queries_k100: int = 200, repeats: int = 3, seed: int = 0,
    root: Path = REPO,
) -> list[Row]:
    rng = np.random.default_rng(seed)
    rows: list[Row] = []
    demo = demo_candidates(root)
    if demo is None:
        print(f"no demo candidates under {root}/artifacts/candidates: run make demo first")
    else:
        lat, lon, names = demo
        rows += rows_for(f"demo candidates ({', '.join(names)})", lat.shape[1], lat, lon, repeats)
    for k, n in ((20, queries_k20), (100, queries_k100)):
        lat, lon = retrieval_like(rng, n, k)
        rows += rows_for("synthetic", k, lat, lon, repeats)

    ours_text, peer_text, ours_ok, peer_ok = dateline_case()
    rows.append(
        Row(
            SECTION,
            "re-rank, dateline cluster: its 8 members ranked first",
            f"{ours_ok} ({ours_text})",
            f"{peer_ok} ({peer_text})",
            goal="ours right",
            met="yes" if ours_ok and not peer_ok else "NO",
        )
    )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--queries-k20", type=int, default=600)
    parser.add_argument("--queries-k100", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--project", type=Path, default=REPO, help="where artifacts/ lies")
    args = parser.parse_args(argv)
    rows = run(args.queries_k20, args.queries_k100, args.repeats, args.seed, args.project)
    print_and_write("DualGeo re-rank: ours against the published loop", rows, args.json)


if __name__ == "__main__":
    main()
