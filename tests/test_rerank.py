"""DualGeo's clustering re-rank against a plain pure-Python re-implementation, plus the cases
that public implementations get wrong: the dateline, the poles, ties and bad settings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geoloc_core.geo.distance import MEAN_EARTH_RADIUS_KM, haversine_km
from geoloc_core.geo.spherical import spherical_mean, spherical_means
from geoloc_core.rerank.dbscan import DISTANCE_TIE_KM, rerank_batch, rerank_one
from geoloc_core.rerank.settings import RerankSettings

Point = tuple[float, float]
DBSCAN_50KM = RerankSettings(method="dbscan", eps_km=50.0, min_samples=2)
NO_RERANK = RerankSettings(method="none", eps_km=50.0, min_samples=2)


# --- the reference: pure Python, written from the definitions --------------------------------


def ref_distance_km(a: Point, b: Point) -> float:
    phi1, phi2 = math.radians(a[0]), math.radians(b[0])
    dphi, dlam = phi2 - phi1, math.radians(b[1] - a[1])
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * MEAN_EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


def ref_dbscan(points: list[Point], eps_km: float, min_samples: int) -> list[int]:
    """DBSCAN by hand: clusters grow from core points in index order; a border point reachable
    from several clusters joins the first one grown (as sklearn does)."""
    neighbours = [
        [j for j, q in enumerate(points) if ref_distance_km(p, q) <= eps_km] for p in points
    ]
    is_core = [len(found) >= min_samples for found in neighbours]
    labels = [-1] * len(points)
    next_label = 0
    for seed in range(len(points)):
        if labels[seed] != -1 or not is_core[seed]:
            continue
        labels[seed] = next_label
        frontier = [seed]
        while frontier:
            for q in neighbours[frontier.pop()]:
                if labels[q] == -1:
                    labels[q] = next_label
                    if is_core[q]:
                        frontier.append(q)
        next_label += 1
    return labels


def ref_centre(points: list[Point]) -> Point:
    x = y = z = 0.0
    for lat, lon in points:
        phi, lam = math.radians(lat), math.radians(lon)
        x += math.cos(phi) * math.cos(lam)
        y += math.cos(phi) * math.sin(lam)
        z += math.sin(phi)
    return math.degrees(math.atan2(z, math.hypot(x, y))), math.degrees(math.atan2(y, x))


def ref_rerank(
    points: list[Point], eps_km: float, min_samples: int
) -> tuple[list[int], list[int], Point | None]:
    labels = ref_dbscan(points, eps_km, min_samples)
    clusters = sorted(set(labels) - {-1})
    if not clusters:
        return list(range(len(points))), labels, None
    size = {c: labels.count(c) for c in clusters}
    largest = max(size.values())
    tied = [c for c in clusters if size[c] == largest]
    chosen = min(tied, key=labels.index)  # the cluster holding the best-ranked candidate
    centre = ref_centre([p for p, label in zip(points, labels, strict=True) if label == chosen])
    # Distances equal to DISTANCE_TIE_KM are ties; sorted() is stable, so rank breaks them.
    order = sorted(
        range(len(points)),
        key=lambda i: round(ref_distance_km(points[i], centre) / DISTANCE_TIE_KM),
    )
    return order, labels, centre


def partition(labels: list[int] | np.ndarray) -> tuple[frozenset[frozenset[int]], frozenset[int]]:
    """Clusters as sets of indices plus the noise set: equal however the clusters are numbered."""
    labels = [int(label) for label in labels]
    clusters = {
        frozenset(i for i, label in enumerate(labels) if label == c) for c in set(labels) - {-1}
    }
    return frozenset(clusters), frozenset(i for i, label in enumerate(labels) if label == -1)


# --- seeded candidate sets like retrieval output ---------------------------------------------


def destination(lat: float, lon: float, bearing: np.ndarray, km: np.ndarray) -> np.ndarray:
    """Points `km` away from (lat, lon) along `bearing` (radians) on the sphere, as (m, 2)."""
    phi, lam, delta = math.radians(lat), math.radians(lon), km / MEAN_EARTH_RADIUS_KM
    phi2 = np.arcsin(np.sin(phi) * np.cos(delta) + np.cos(phi) * np.sin(delta) * np.cos(bearing))
    lam2 = lam + np.arctan2(
        np.sin(bearing) * np.sin(delta) * np.cos(phi), np.cos(delta) - np.sin(phi) * np.sin(phi2)
    )
    lon2 = (np.degrees(lam2) + 180.0) % 360.0 - 180.0
    return np.stack([np.clip(np.degrees(phi2), -90.0, 90.0), lon2], axis=1)


def candidate_set(rng: np.random.Generator, where: str, k: int, eps_km: float) -> np.ndarray:
    """k candidates around a few cluster sites near `where`, some outliers, some duplicates."""
    base = {
        "anywhere": (
            float(np.degrees(np.arcsin(rng.uniform(-0.95, 0.95)))),
            rng.uniform(-180, 180),
        ),
        "dateline": (rng.uniform(-60, 60), rng.choice([179.99, -179.99])),
        "north pole": (89.7, rng.uniform(-180, 180)),
        "south pole": (-89.7, rng.uniform(-180, 180)),
    }[where]
    n_sites = int(rng.integers(1, 4))
    sites = destination(
        *base, rng.uniform(0, 2 * np.pi, n_sites), rng.uniform(0, 4 * eps_km, n_sites)
    )
    site_of = rng.integers(0, n_sites, k)
    spread = rng.uniform(0.0, 1.2 * eps_km, k)
    points = np.array(
        [
            destination(*sites[s], rng.uniform(0, 2 * np.pi, 1), spread[i : i + 1])[0]
            for i, s in enumerate(site_of)
        ]
    ).reshape(k, 2)
    outliers = rng.random(k) < 0.2
    points[outliers, 0] = np.degrees(np.arcsin(rng.uniform(-1, 1, int(outliers.sum()))))
    points[outliers, 1] = rng.uniform(-180, 180, int(outliers.sum()))
    if k >= 3 and rng.random() < 0.3:  # exact duplicates: equal distances, rank must decide
        points[int(rng.integers(1, k))] = points[int(rng.integers(0, k))]
    return points


def test_matches_reference_on_random_candidate_sets() -> None:
    rng = np.random.default_rng(2026)
    places = ["anywhere", "dateline", "north pole", "south pole"]
    seen_clusters, seen_no_cluster, seen_several = 0, 0, 0
    for case in range(320):
        where = places[case % len(places)]
        k = int(rng.integers(1, 31))
        eps_km = float(rng.choice([5.0, 25.0, 100.0, 400.0]))
        min_samples = int(rng.integers(1, 5))
        points = candidate_set(rng, where, k, eps_km)

        result = rerank_one(points[:, 0], points[:, 1], eps_km, min_samples)
        ref_order, ref_labels, ref_centre_point = ref_rerank(
            [(float(a), float(b)) for a, b in points], eps_km, min_samples
        )
        context = f"case {case} ({where}, k={k}, eps={eps_km}, min_samples={min_samples})"
        assert partition(result.labels) == partition(ref_labels), context
        assert result.order.tolist() == ref_order, context
        if ref_centre_point is None:
            assert result.centre is None, context
            seen_no_cluster += 1
        else:
            assert result.centre is not None, context
            gap = haversine_km(*result.centre, *ref_centre_point)
            assert gap < 1e-6, context
            seen_clusters += 1
            seen_several += len(set(ref_labels) - {-1}) > 1
    # The sets exercise every branch, not only the easy one.
    assert seen_clusters > 100 and seen_no_cluster > 10 and seen_several > 30


def test_batch_rows_equal_single_queries() -> None:
    rng = np.random.default_rng(7)
    rows = [candidate_set(rng, "anywhere", 12, 50.0) for _ in range(25)]
    lat = np.stack([r[:, 0] for r in rows])
    lon = np.stack([r[:, 1] for r in rows])
    order, labels, centres = rerank_batch(lat, lon, DBSCAN_50KM)
    assert order.shape == labels.shape == (25, 12) and centres.shape == (25, 2)
    for i in range(25):
        single = rerank_one(lat[i], lon[i], 50.0, 2)
        assert order[i].tolist() == single.order.tolist()
        assert labels[i].tolist() == single.labels.tolist()
        if single.centre is None:
            assert np.isnan(centres[i]).all()
        else:
            assert tuple(centres[i]) == single.centre


# --- the cases that matter --------------------------------------------------------------------


def test_cluster_across_the_dateline_stays_at_the_dateline() -> None:
    lat = np.array([-40.0, 10.0, 10.02, 9.98, 10.01])
    lon = np.array([20.0, 179.95, -179.95, 179.97, -179.96])
    result = rerank_one(lat, lon, eps_km=50.0, min_samples=2)
    assert result.centre is not None
    centre_lat, centre_lon = result.centre
    assert float(haversine_km(centre_lat, centre_lon, centre_lat, 180.0)) < 10.0
    # The published recipe would put the centre near longitude 0, on the other side of the Earth.
    assert abs(float(np.mean(lon[1:]))) < 1.0
    assert abs(centre_lon) > 179.0
    assert result.order.tolist()[-1] == 0  # the outlier goes last
    assert partition(result.labels) == (frozenset({frozenset({1, 2, 3, 4})}), frozenset({0}))


@pytest.mark.parametrize("pole", [90.0, -90.0])
def test_cluster_around_a_pole(pole: float) -> None:
    side = math.copysign(1.0, pole)
    lat = np.array([0.0, 89.9 * side, 89.92 * side, 89.9 * side, 89.95 * side])
    lon = np.array([0.0, 0.0, 90.0, 180.0, -90.0])
    result = rerank_one(lat, lon, eps_km=50.0, min_samples=2)
    assert result.centre is not None
    assert abs(result.centre[0]) > 89.99 and math.copysign(1.0, result.centre[0]) == side
    assert result.order.tolist() == [4, 2, 1, 3, 0]  # ties (1, 3) keep their retrieval order
    assert result.labels.tolist()[0] == -1


def test_no_cluster_keeps_the_retrieval_order() -> None:
    lat = np.array([0.0, 30.0, -45.0, 60.0])
    lon = np.array([0.0, 100.0, -120.0, 10.0])
    result = rerank_one(lat, lon, eps_km=1.0, min_samples=2)
    assert result.order.tolist() == [0, 1, 2, 3]
    assert result.labels.tolist() == [-1, -1, -1, -1]
    assert result.centre is None

    empty = rerank_one(np.array([]), np.array([]), eps_km=1.0, min_samples=1)
    assert empty.order.tolist() == [] and empty.labels.tolist() == [] and empty.centre is None


def test_one_candidate_with_min_samples_one_is_a_cluster() -> None:
    alone = rerank_one(np.array([12.5]), np.array([-179.0]), eps_km=10.0, min_samples=1)
    assert alone.order.tolist() == [0] and alone.labels.tolist() == [0]
    assert alone.centre is not None
    assert float(haversine_km(*alone.centre, 12.5, -179.0)) < 1e-9
    noise = rerank_one(np.array([12.5]), np.array([-179.0]), eps_km=10.0, min_samples=2)
    assert noise.labels.tolist() == [-1] and noise.centre is None


def test_ties_keep_the_retrieval_order() -> None:
    # A two-point cluster: both members are equidistant from its midpoint, whichever comes first.
    for lat in (np.array([48.85, 48.86]), np.array([48.86, 48.85])):
        result = rerank_one(lat, np.array([2.35, 2.36]), eps_km=5.0, min_samples=2)
        assert result.order.tolist() == [0, 1]
    # Exact duplicates keep their order too.
    lat = np.array([-10.0, 51.6, 51.4, 51.4, 51.4, 51.45])
    lon = np.array([-60.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    result = rerank_one(lat, lon, eps_km=30.0, min_samples=2)
    assert result.order.tolist() == [5, 2, 3, 4, 1, 0]


def test_equally_large_clusters_pick_the_one_with_the_best_ranked_candidate() -> None:
    paris, tokyo = (48.85, 2.35), (35.68, 139.69)
    lat = np.array([tokyo[0], paris[0], tokyo[0] + 0.01, paris[0] + 0.01, 0.0])
    lon = np.array([tokyo[1], paris[1], tokyo[1], paris[1], 0.0])
    result = rerank_one(lat, lon, eps_km=10.0, min_samples=2)
    assert result.centre is not None
    assert float(haversine_km(*result.centre, *tokyo)) < 1.0
    assert result.order.tolist()[:2] == [0, 2]


def test_method_none_runs_no_clustering(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_clustering(*args: object, **kwargs: object) -> None:
        raise AssertionError("method none must not cluster")

    import geoloc_core.rerank.dbscan as rerank_module

    monkeypatch.setattr(rerank_module, "cluster_labels", no_clustering)
    with pytest.raises(AssertionError, match="must not cluster"):  # the patch is the one used
        rerank_batch(np.zeros((1, 2)), np.zeros((1, 2)), DBSCAN_50KM)
    lat = np.array([[10.0, 10.01, -5.0], [0.0, 0.0, 0.0]])
    lon = np.array([[20.0, 20.01, 7.0], [1.0, 1.0, 1.0]])
    order, labels, centres = rerank_batch(lat, lon, NO_RERANK)
    assert order.tolist() == [[0, 1, 2], [0, 1, 2]]
    assert labels.tolist() == [[-1, -1, -1], [-1, -1, -1]]
    assert centres.shape == (2, 2) and np.isnan(centres).all()


# --- settings and inputs ----------------------------------------------------------------------


def test_settings_from_section_and_defaults() -> None:
    section = {"method": "dbscan", "eps_km": 50.0, "min_samples": 2, "min_cluster_size": 2}
    assert RerankSettings.from_section(section) == RerankSettings()
    assert RerankSettings.from_section({**section, "method": "none", "eps_km": 5}).eps_km == 5


@pytest.mark.parametrize(
    ("section_update", "words"),
    [
        ({"method": "kmeans"}, ["rerank.method='kmeans'", "['none', 'dbscan', 'hdbscan']"]),
        ({"method": None}, ["rerank.method=None", "['none', 'dbscan', 'hdbscan']"]),
        ({"eps_km": -5}, ["rerank.eps_km=-5", "> 0"]),
        ({"eps_km": 0.0}, ["rerank.eps_km=0.0", "> 0"]),
        ({"eps_km": True}, ["rerank.eps_km=True", "> 0"]),
        ({"eps_km": "50"}, ["rerank.eps_km='50'", "> 0"]),
        ({"eps_km": float("nan")}, ["rerank.eps_km=nan", "> 0"]),
        ({"eps_km": float("inf")}, ["rerank.eps_km=inf", "finite"]),
        ({"min_samples": 0}, ["rerank.min_samples=0", ">= 1"]),
        ({"min_samples": 2.5}, ["rerank.min_samples=2.5", ">= 1"]),
        ({"min_samples": False}, ["rerank.min_samples=False", ">= 1"]),
        ({"min_cluster_size": 1}, ["rerank.min_cluster_size=1", ">= 2"]),
    ],
)
def test_bad_setting_names_its_key_in_one_line(
    section_update: dict[str, object], words: list[str]
) -> None:
    section = {
        "method": "dbscan", "eps_km": 50.0, "min_samples": 2, "min_cluster_size": 2,
        **section_update,
    }
    with pytest.raises(ValueError) as caught:
        RerankSettings.from_section(section)
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ({"method": "dbscan", "eps_km": 50.0}, ["missing ['min_samples', 'min_cluster_size']"]),
        (
            {"method": "dbscan", "eps_km": 50.0, "min_samples": 2, "min_cluster_size": 2, "k": 5},
            ["unknown ['k']"],
        ),
    ],
)
def test_missing_or_unknown_key_is_named(section: dict[str, object], words: list[str]) -> None:
    with pytest.raises(ValueError) as caught:
        RerankSettings.from_section(section)
    assert "\n" not in str(caught.value)
    for word in words:
        assert word in str(caught.value)


def test_bad_candidate_coordinates_name_the_row() -> None:
    lat = np.zeros((4, 3))
    lon = np.zeros((4, 3))
    lat[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"lat of query row 2, column 1 is nan"):
        rerank_batch(lat, lon, RerankSettings())
    lat[2, 1] = 0.0
    lon[3, 0] = 181.0
    with pytest.raises(ValueError, match=r"lon of query row 3, column 0 is 181.0"):
        rerank_batch(lat, lon, NO_RERANK)
    with pytest.raises(ValueError, match=r"\(n queries, k candidates\)"):
        rerank_batch(lat, lon[:, :2], RerankSettings())


# --- the spherical mean on its own ------------------------------------------------------------


def test_spherical_mean_of_one_point_is_the_point() -> None:
    lat, lon = spherical_mean([-33.9], [151.2])
    assert abs(lat + 33.9) < 1e-12 and abs(lon - 151.2) < 1e-12


def test_spherical_mean_refuses_points_that_cancel_out() -> None:
    with pytest.raises(ValueError, match="cancel out"):
        spherical_mean([10.0, -10.0], [20.0, -160.0])
    with pytest.raises(ValueError, match="at least one"):
        spherical_mean([], [])
    with pytest.raises(ValueError, match=r"row 1 has no points"):
        spherical_means(np.zeros((2, 2)), np.zeros((2, 2)), [[True, False], [False, False]])


def test_spherical_means_match_the_single_version() -> None:
    lat = np.array([[1.0, 2.0, 3.0], [89.0, 89.5, 88.0]])
    lon = np.array([[179.0, -179.0, 180.0], [0.0, 120.0, -120.0]])
    mask = np.array([[True, True, False], [True, True, True]])
    means_lat, means_lon = spherical_means(lat, lon, mask)
    for i in range(2):
        single = spherical_mean(lat[i][mask[i]], lon[i][mask[i]])
        assert float(haversine_km(means_lat[i], means_lon[i], *single)) < 1e-9
