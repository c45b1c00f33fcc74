"""The HDBSCAN re-rank (rerank.method hdbscan) against a plain HDBSCAN* written from its
definition, on random candidate sets anywhere, across the dateline and around the poles."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from geoloc_core.geo.distance import haversine_km
from geoloc_core.rerank.dbscan import DISTANCE_TIE_KM, rerank_batch, rerank_one
from geoloc_core.rerank.settings import RerankSettings
from tests.test_rerank import Point, candidate_set, partition, ref_centre, ref_distance_km

# --- the reference: HDBSCAN* in plain Python, O(n²) -------------------------------------------


def ref_angle(a: Point, b: Point) -> float:
    """Great-circle angle (radians) in the haversine form scikit-learn's metric uses."""
    phi1, lam1, phi2, lam2 = (math.radians(v) for v in (*a, *b))
    sin_dphi, sin_dlam = math.sin(0.5 * (phi1 - phi2)), math.sin(0.5 * (lam1 - lam2))
    h = sin_dphi * sin_dphi + math.cos(phi1) * math.cos(phi2) * sin_dlam * sin_dlam
    return 2 * math.asin(math.sqrt(h))


def ref_spanning_tree(points: list[Point], min_samples: int) -> list[tuple[int, int, float]]:
    """Prim's minimum spanning tree of the mutual-reachability graph, grown from point 0.
    Mutual reachability: max(core(a), core(b), d(a, b)), core(p) the distance to p's
    min_samples-th nearest point, itself included. Ties: the lowest index joins first, from the
    first tree point that reached it (scikit-learn's order)."""
    n = len(points)
    d = [[ref_angle(p, q) for q in points] for p in points]
    core = [sorted(row)[min_samples - 1] for row in d]
    in_tree, best, source = [False] * n, [math.inf] * n, [0] * n
    edges, current = [], 0
    for _ in range(n - 1):
        in_tree[current] = True
        pick, pick_from, pick_weight = -1, -1, math.inf
        for j in range(n):
            if in_tree[j]:
                continue
            reach = max(core[current], core[j], d[current][j])
            if reach < best[j]:
                best[j], source[j] = reach, current
            if best[j] < pick_weight or pick == -1:
                pick, pick_from, pick_weight = j, source[j], best[j]
        edges.append((pick_from, pick, pick_weight))
        current = pick
    return edges


def ref_hdbscan(points: list[Point], min_cluster_size: int, min_samples: int) -> list[int]:
    """HDBSCAN* labels: single linkage over the spanning tree, condensed by min_cluster_size,
    the clusters of excess of mass (never the root), -1 noise."""
    n = len(points)
    if n < max(2, min_samples):
        return [-1] * n
    edges = ref_spanning_tree(points, min_samples)
    # Single linkage: merge along the tree's edges, lightest first; equal weights in numpy's
    # default sort order, as scikit-learn merges them. Merged groups are nodes n, n + 1, ...
    up, size, merges = list(range(2 * n - 1)), [1] * n + [0] * (n - 1), []
    for step, e in enumerate(np.argsort(np.array([w for _, _, w in edges]))):
        a, b, weight = edges[int(e)]
        groups = []
        for x in (a, b):
            while up[x] != x:
                x = up[x]
            groups.append(x)
        up[groups[0]] = up[groups[1]] = n + step
        size[n + step] = size[groups[0]] + size[groups[1]]
        merges.append((groups[0], groups[1], 1.0 / weight if weight > 0 else math.inf))

    def points_under(node: int) -> list[int]:
        queue, found = [node], []
        while queue:
            x = queue.pop(0)
            if x < n:
                found.append(x)
            else:
                queue += list(merges[x - n][:2])
        return found

    # Condensed tree, top-down in breadth-first order: a split where both sides hold at least
    # min_cluster_size points makes two new clusters; otherwise the small side's points fall out
    # of the cluster at that lambda (1 / height) and the big side carries the cluster on.
    root = 2 * n - 2
    cluster_of, next_cluster = {root: n}, n + 1
    rows: list[tuple[int, int, float, int]] = []  # (cluster, child cluster or point, lambda, size)
    queue = [root]
    while queue:
        node = queue.pop(0)
        left, right, lam = merges[node - n]
        cluster = cluster_of[node]
        big = [size[c] >= min_cluster_size for c in (left, right)]
        for child, is_big in zip((left, right), big, strict=True):
            if all(big):
                cluster_of[child] = next_cluster
                next_cluster += 1
                rows.append((cluster, cluster_of[child], lam, size[child]))
            elif is_big:
                cluster_of[child] = cluster
            else:
                rows += [(cluster, p, lam, 1) for p in points_under(child)]
        queue += [c for c, is_big in zip((left, right), big, strict=True) if is_big and c >= n]

    # Stability: sum over what leaves a cluster (points and child clusters) of
    # (lambda at leaving - lambda at the cluster's birth) * size.
    birth = {child: lam for _, child, lam, s in rows if s > 1}
    birth[n] = 0.0
    stability = dict.fromkeys(birth, 0.0)
    for cluster, _, lam, s in rows:
        stability[cluster] += (lam - birth[cluster]) * s
    children = {c: [child for parent, child, _, s in rows if parent == c and s > 1] for c in birth}
    parent_of = {child: parent for parent, child, _, _ in rows}
    # Excess of mass, deepest clusters first: keep a cluster unless its children together are
    # more stable; the root is never one.
    selected: set[int] = set()
    for cluster in sorted(set(birth) - {n}, reverse=True):
        below = float(np.sum([stability[c] for c in children[cluster]]))
        if below > stability[cluster]:
            stability[cluster] = below
        else:
            stack = list(children[cluster])
            while stack:
                c = stack.pop()
                selected.discard(c)
                stack += children[c]
            selected.add(cluster)
    labels = []
    for p in range(n):
        cluster = parent_of[p]
        while cluster not in selected and cluster != n:
            cluster = parent_of[cluster]
        labels.append(cluster if cluster in selected else -1)
    return labels


def ref_rerank(points: list[Point], min_cluster_size: int, min_samples: int):
    """The re-rank's rules (as tests/test_rerank.py's reference) over the HDBSCAN* clusters."""
    labels = ref_hdbscan(points, min_cluster_size, min_samples)
    clusters = sorted(set(labels) - {-1})
    if not clusters:
        return list(range(len(points))), labels, None
    largest = max(labels.count(c) for c in clusters)
    chosen = min((c for c in clusters if labels.count(c) == largest), key=labels.index)
    centre = ref_centre([p for p, label in zip(points, labels, strict=True) if label == chosen])
    order = sorted(
        range(len(points)),
        key=lambda i: round(ref_distance_km(points[i], centre) / DISTANCE_TIE_KM),
    )
    return order, labels, centre


# --- the re-rank against it -------------------------------------------------------------------


def test_matches_reference_on_random_candidate_sets() -> None:
    rng = np.random.default_rng(2027)
    places = ["anywhere", "dateline", "north pole", "south pole"]
    seen_clusters, seen_no_cluster = 0, 0
    for case in range(160):
        where = places[case % len(places)]
        k = int(rng.integers(1, 21))
        spread_km = float(rng.choice([5.0, 25.0, 100.0, 400.0]))
        min_cluster_size = int(rng.integers(2, 6))
        min_samples = int(rng.integers(1, 5))
        points = candidate_set(rng, where, k, spread_km)

        result = rerank_one(
            points[:, 0], points[:, 1], 50.0, min_samples, "hdbscan", min_cluster_size
        )
        ref_order, ref_labels, ref_centre_point = ref_rerank(
            [(float(a), float(b)) for a, b in points], min_cluster_size, min_samples
        )
        context = f"case {case} ({where}, k={k}, size={min_cluster_size}, samples={min_samples})"
        assert partition(result.labels) == partition(ref_labels), context
        assert result.order.tolist() == ref_order, context
        if ref_centre_point is None:
            assert result.centre is None, context
            seen_no_cluster += 1
        else:
            assert result.centre is not None, context
            assert haversine_km(*result.centre, *ref_centre_point) < 1e-6, context
            seen_clusters += 1
    # Both branches, often (the root is never a cluster, so a set that is one blob has none).
    assert seen_clusters > 40 and seen_no_cluster > 40


def test_clusters_of_any_density_without_eps() -> None:
    """A city (views 200 m apart) and a region 1,000 km away (views 150 km apart): no single
    DBSCAN eps finds both, HDBSCAN does, whatever eps_km says."""
    city = [(48.85 + 0.002 * i, 2.35 + 0.003 * (i % 2)) for i in range(4)]
    region = [(40.0 + 1.3 * i, -4.0 + 0.8 * (i % 2)) for i in range(5)]
    points = np.array([(-40.0, -120.0), *region, *city, (60.0, 150.0)])
    region_set, city_set = frozenset(range(1, 6)), frozenset(range(6, 10))
    for eps_km in (1.0, 50.0, 1000.0):
        result = rerank_one(points[:, 0], points[:, 1], eps_km, 2, "hdbscan", 3)
        assert partition(result.labels) == (frozenset({region_set, city_set}), frozenset({0, 10}))
        assert result.centre is not None and set(result.order.tolist()[:5]) == region_set
        distance = haversine_km(points[result.order, 0], points[result.order, 1], *result.centre)
        assert np.all(np.diff(distance[:5]) > 0) and result.order[0] == 3  # the middle view
    for eps_km, lost in ((1.0, region_set), (1000.0, city_set)):
        dbscan = rerank_one(points[:, 0], points[:, 1], eps_km, 2)
        assert lost not in partition(dbscan.labels)[0]


def test_too_few_candidates_have_no_cluster() -> None:
    lat, lon = np.array([[10.0, 10.001, 10.002]]), np.array([[5.0, 5.0, 5.001]])
    for k, samples in ((1, 1), (3, 4)):
        order, labels, centres = rerank_batch(
            lat[:, :k], lon[:, :k], RerankSettings(method="hdbscan", min_samples=samples)
        )
        assert order.tolist() == [list(range(k))] and labels.tolist() == [[-1] * k]
        assert np.isnan(centres).all()


def test_hdbscan_is_refused_with_a_bad_cluster_size() -> None:
    with pytest.raises(ValueError, match=r"rerank.min_cluster_size=1.*>= 2"):
        RerankSettings.from_section(
            {"method": "hdbscan", "eps_km": 50.0, "min_samples": 2, "min_cluster_size": 1}
        )


def test_dbscan_does_not_load_hdbscan() -> None:
    sys.modules.pop("geoloc_core.rerank.hdbscan", None)
    rerank_one(np.array([1.0, 1.0]), np.array([2.0, 2.0]), 10.0, 2)
    assert "geoloc_core.rerank.hdbscan" not in sys.modules


def test_report_names_the_hdbscan_settings() -> None:
    from geoloc_core.report.labels import run_setting

    section = {"method": "hdbscan", "eps_km": 50.0, "min_samples": 2, "min_cluster_size": 3}
    assert run_setting({"rerank": section}).rerank == "hdbscan, cluster 3, min 2"
    assert run_setting({"rerank": {**section, "method": "dbscan"}}).rerank == (
        "dbscan eps 50 km, min 2"
    )
