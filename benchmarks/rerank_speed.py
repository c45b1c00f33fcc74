"""DualGeo's clustering re-rank: ours against the published loop, for speed and for agreement.

The published loop, re-implemented here from its description: per query a pandas DataFrame of
the candidates, sklearn DBSCAN (haversine), the largest cluster, its centre as the arithmetic
mean of member latitudes and longitudes, then per candidate row (df.iloc[i]) a
geopy.distance.geodesic to the centre, and a sort by it. Ours (geoloc_core.rerank.dbscan) runs
the same DBSCAN but takes the spherical mean and sorts all candidates with one vectorised
haversine and a stable sort.

Candidate sets resemble retrieval output: a few tight clusters (tens of km) and scattered
outliers, away from the dateline. Prints ms per query at k = 20 and k = 100, the fraction of
queries whose orders agree exactly (and why the others differ), and a dateline case where the
arithmetic-mean centre lands on the wrong side of the Earth. Per-query times are medians over
the queries (the batched path: over chunks of 25 queries).

    python benchmarks/rerank_speed.py [--queries-k20 600] [--queries-k100 200] [--seed 0]

Not a test: it prints numbers and ratios.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from bench_rows import Row, bench_parser, print_and_write
from geopy.distance import geodesic
from sklearn.cluster import DBSCAN

from geoloc_core.geo.distance import MEAN_EARTH_RADIUS_KM, haversine_km
from geoloc_core.rerank.dbscan import rerank_batch, rerank_one
from geoloc_core.rerank.settings import RerankSettings

SETTINGS = RerankSettings(method="dbscan", eps_km=50.0, min_samples=2)
KM_PER_DEGREE = 111.195  # along a meridian, on the mean sphere
BATCH_CHUNK = 25
TOP = 5  # what a downstream LMM prompt sees first
SECTION = "2 retrieval"


def peer_rerank(lat: np.ndarray, lon: np.ndarray, eps_km: float, min_samples: int) -> np.ndarray:
    """The published re-rank loop: returns the new order of the candidates' indices."""
    df = pd.DataFrame({"latitude": lat, "longitude": lon})
    coords = np.radians(df[["latitude", "longitude"]].to_numpy())
    clustering = DBSCAN(
        eps=eps_km / MEAN_EARTH_RADIUS_KM,
        min_samples=min_samples,
        metric="haversine",
        algorithm="ball_tree",
    ).fit(coords)
    df["cluster"] = clustering.labels_
    clustered = df[df["cluster"] != -1]
    if clustered.empty:
        return np.arange(len(df))
    largest = clustered["cluster"].value_counts().idxmax()
    members = df[df["cluster"] == largest]
    centre = (members["latitude"].mean(), members["longitude"].mean())
    distances = []
    for i in range(len(df)):
        row = df.iloc[i]
        distances.append(geodesic((row["latitude"], row["longitude"]), centre).km)
    df["distance"] = distances
    return df.sort_values("distance").index.to_numpy()


def retrieval_like(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, k) candidates: 1-4 clusters of sigma 3-25 km near one region and ~30 % outliers;
    one query in ten is all outliers (a hard photo: retrieval found no consensus)."""
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
        outliers = rng.random(k) < (1.0 if rng.random() < 0.1 else 0.3)
        lat[q, outliers] = rng.uniform(-60, 60, int(outliers.sum()))
        lon[q, outliers] = rng.uniform(-170, 170, int(outliers.sum()))
    return lat, lon


@dataclass
class Timing:
    ours_one_ms: float  # median of rerank_one per query
    ours_batch_ms: float  # rerank_batch per query, median over chunks of BATCH_CHUNK queries
    peer_ms: float  # median of the published loop per query
    peer_orders: np.ndarray
    ours_orders: np.ndarray
    ours_centres: np.ndarray


def measure(lat: np.ndarray, lon: np.ndarray) -> Timing:
    n = lat.shape[0]
    eps, samples = SETTINGS.eps_km, SETTINGS.min_samples
    for q in range(min(n, 5)):  # warm-up: imports, caches
        rerank_one(lat[q], lon[q], eps, samples)
        peer_rerank(lat[q], lon[q], eps, samples)

    ours_times, peer_times, peer_orders = [], [], []
    for q in range(n):
        start = time.perf_counter()
        rerank_one(lat[q], lon[q], eps, samples)
        ours_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        peer_orders.append(peer_rerank(lat[q], lon[q], eps, samples))
        peer_times.append(time.perf_counter() - start)

    # Chunks, not one call: a median over chunks resists the spikes of a shared machine.
    chunk_ms, orders, centres = [], [], []
    for first in range(0, n, BATCH_CHUNK):
        rows = slice(first, first + BATCH_CHUNK)
        start = time.perf_counter()
        chunk_orders, _, chunk_centres = rerank_batch(lat[rows], lon[rows], SETTINGS)
        chunk_ms.append(1e3 * (time.perf_counter() - start) / chunk_orders.shape[0])
        orders.append(chunk_orders)
        centres.append(chunk_centres)
    ours_orders, centres = np.concatenate(orders), np.concatenate(centres)
    return Timing(
        ours_one_ms=1e3 * statistics.median(ours_times),
        ours_batch_ms=statistics.median(chunk_ms),
        peer_ms=1e3 * statistics.median(peer_times),
        peer_orders=np.stack(peer_orders),
        ours_orders=ours_orders,
        ours_centres=centres,
    )


def explain_mismatches(lat: np.ndarray, lon: np.ndarray, timing: Timing) -> str:
    """Why orders differ. Every discordant pair of candidates is classed by its distance to our
    centre: near (both within 2 eps: the cluster and its rim) or far (outliers, thousands of km
    away, where the sphere's up-to-0.56 % error is tens of km); for each class, how far apart
    the two distances are. Near-equal distances swap; nothing else should."""
    differs = np.flatnonzero((timing.ours_orders != timing.peer_orders).any(axis=1))
    if differs.size == 0:
        return "no mismatches"
    k = lat.shape[1]
    near_pairs, far_pairs = 0, 0
    near_worst_m, far_worst_relative = 0.0, 0.0
    for q in differs:
        centre = timing.ours_centres[q]
        distance = haversine_km(lat[q], lon[q], centre[0], centre[1])
        ours_rank = np.empty(k, dtype=np.int64)
        peer_rank = np.empty(k, dtype=np.int64)
        ours_rank[timing.ours_orders[q]] = np.arange(k)
        peer_rank[timing.peer_orders[q]] = np.arange(k)
        discordant = (
            (ours_rank[:, None] - ours_rank[None, :]) * (peer_rank[:, None] - peer_rank[None, :])
        ) < 0
        i, j = np.nonzero(np.triu(discordant))
        gap_km = np.abs(distance[i] - distance[j])
        near = np.maximum(distance[i], distance[j]) <= 2 * SETTINGS.eps_km
        near_pairs += int(near.sum())
        far_pairs += int((~near).sum())
        if near.any():
            near_worst_m = max(near_worst_m, 1e3 * float(gap_km[near].max()))
        if (~near).any():
            relative = gap_km[~near] / np.maximum(distance[i], distance[j])[~near]
            far_worst_relative = max(far_worst_relative, float(relative.max()))
    return (
        f"{differs.size} queries differ by {near_pairs + far_pairs} swapped candidate pairs: "
        f"{near_pairs} near the centre (distances at most {near_worst_m:.0f} m apart: the "
        f"arithmetic vs spherical centre and ellipsoid vs sphere), {far_pairs} among far "
        f"outliers (at most {100 * far_worst_relative:.2f} % apart: ellipsoid vs sphere, "
        "plus the centre shift seen from afar)"
    )


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
    peer = peer_rerank(lat, lon, SETTINGS.eps_km, SETTINGS.min_samples)
    assert ours.centre is not None
    peer_centre = (float(cluster_lat.mean()), float(cluster_lon.mean()))
    ours_miss = float(haversine_km(*ours.centre, -17.0, 180.0))
    peer_miss = float(haversine_km(*peer_centre, -17.0, 180.0))
    ours_ok = bool(in_cluster[ours.order[:8]].all())
    peer_ok = bool(in_cluster[peer[:8]].all())
    ours_text = f"centre ({ours.centre[0]:.2f}, {ours.centre[1]:.2f}), {ours_miss:.0f} km off"
    peer_text = f"centre ({peer_centre[0]:.2f}, {peer_centre[1]:.2f}), {peer_miss:,.0f} km off"
    print(
        f"dateline case: ours ranks first {ours.order[:3].tolist()}...; peer ranks first "
        f"{peer[:3].tolist()}... (indices 2-9 are the cluster, 0 Tokyo, 1 Cape Town, 10 the "
        "Gulf of Guinea)"
    )
    return ours_text, peer_text, ours_ok, peer_ok


def run(queries_k20: int = 600, queries_k100: int = 200, seed: int = 0) -> list[Row]:
    """The rows: per k, ms per query of ours (one query, and batched) against the peer's loop."""
    rng = np.random.default_rng(seed)
    rows: list[Row] = []
    for k, n in ((20, queries_k20), (100, queries_k100)):
        lat, lon = retrieval_like(rng, n, k)
        timing = measure(lat, lon)
        clustered = float(np.isfinite(timing.ours_centres[:, 0]).mean())
        same = float((timing.ours_orders == timing.peer_orders).all(axis=1).mean())
        same_top = float(
            (timing.ours_orders[:, :TOP] == timing.peer_orders[:, :TOP]).all(axis=1).mean()
        )
        why = explain_mismatches(lat, lon, timing)
        print(f"k={k}: {n} queries, {clustered:.0%} with a cluster; {why}")
        for what, ours_ms in (
            (f"re-rank ms/query, k={k}, rerank_one (median of {n})", timing.ours_one_ms),
            (f"re-rank ms/query, k={k}, rerank_batch (median of chunks)", timing.ours_batch_ms),
        ):
            ratio = timing.peer_ms / ours_ms
            rows.append(
                Row(
                    SECTION,
                    what + " vs DualGeo's per-row loop",
                    f"{ours_ms:.2f}",
                    f"{timing.peer_ms:.2f}",
                    f"{ratio:.1f}x faster",
                    "ours faster",
                    "yes" if ratio > 1 else "NO",
                    {"k": k, "queries": n, "ours_ms": ours_ms, "peer_ms": timing.peer_ms},
                )
            )
        rows.append(
            Row(
                SECTION,
                f"re-rank k={k}: orders / top-{TOP} identical to the peer's",
                f"{same:.1%} / {same_top:.1%}",
                goal="report (away from the dateline)",
                values={"k": k, "same_order": same, "same_top": same_top, "why": why},
            )
        )

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
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = run(args.queries_k20, args.queries_k100, args.seed)
    print_and_write("DualGeo re-rank: ours against the published loop", rows, args.json)


if __name__ == "__main__":
    main()
