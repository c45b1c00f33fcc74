"""DBSCAN (haversine) over many queries' candidate sets at once, with scikit-learn's labels.

One scikit-learn fit per query costs about a millisecond of call overhead for 20 points; the
clustering itself is a few thousand distance tests. Here all queries share one (n, k, k) block
of pairwise distances, and the clusters are the connected components of each query's core
points, found for every query in one sparse-graph call. The labels are DBSCAN's, numbered as
scikit-learn numbers them: clusters in the order of their first core point, and a border point
within reach of several clusters joins the first one.

The distance test is the one scikit-learn's ball tree makes for the haversine metric (no
arcsine: sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2) against sin²(eps/2)).
"""

from __future__ import annotations

import numpy as np

from geoloc_core.geo.distance import MEAN_EARTH_RADIUS_KM

NOISE = -1
# Pairwise blocks are built for this many (query, candidate, candidate) triples at a time:
# ~24 MB of float64 per temporary, whatever the number of queries.
BLOCK_PAIRS = 3_000_000


def dbscan_labels(
    lat: np.ndarray, lon: np.ndarray, eps_km: float, min_samples: int
) -> np.ndarray:
    """DBSCAN labels (n, k) of n queries' candidates, given as validated (n, k) degree arrays;
    a point counts itself towards min_samples; -1 is noise."""
    n, k = lat.shape
    labels = np.full((n, k), NOISE, dtype=np.int64)
    if n == 0 or k == 0:
        return labels
    reduced_eps = np.sin(0.5 * eps_km / MEAN_EARTH_RADIUS_KM) ** 2
    rows = max(1, BLOCK_PAIRS // (k * k))
    for first in range(0, n, rows):
        block = slice(first, first + rows)
        within = _within_eps(lat[block], lon[block], reduced_eps)
        labels[block] = _labels_from_neighbourhoods(within, min_samples)
    return labels


def _within_eps(lat: np.ndarray, lon: np.ndarray, reduced_eps: float) -> np.ndarray:
    """(m, k, k) bool: candidate j lies within eps of candidate i (each point of itself).

    sin((a - b) / 2) comes from the half-angle sines and cosines of each point (the difference
    formula): two products per pair instead of a sine, exactly 0 for equal coordinates, and off
    from the direct form by ~1e-16 absolute, a few micrometres of distance."""
    half_phi, half_lam = np.radians(lat) / 2, np.radians(lon) / 2
    sin_phi, cos_phi = np.sin(half_phi), np.cos(half_phi)
    sin_lam, cos_lam = np.sin(half_lam), np.cos(half_lam)
    sin_half_dphi = sin_phi[:, :, None] * cos_phi[:, None, :]
    sin_half_dphi -= cos_phi[:, :, None] * sin_phi[:, None, :]
    sin_half_dlam = sin_lam[:, :, None] * cos_lam[:, None, :]
    sin_half_dlam -= cos_lam[:, :, None] * sin_lam[:, None, :]
    cos_lat = cos_phi * cos_phi - sin_phi * sin_phi  # cos(phi) from the half angle
    sin_half_dlam *= sin_half_dlam
    sin_half_dlam *= cos_lat[:, :, None] * cos_lat[:, None, :]
    sin_half_dphi *= sin_half_dphi
    sin_half_dphi += sin_half_dlam
    return sin_half_dphi <= reduced_eps


def _labels_from_neighbourhoods(within: np.ndarray, min_samples: int) -> np.ndarray:
    """DBSCAN labels from the neighbourhood matrices of m queries. SciPy is imported here, on
    first use, so that loading the re-rank step (every stage's code location) does not pay it."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    m, k, _ = within.shape
    core = within.sum(axis=2) >= min_samples
    core_links = within & core[:, :, None] & core[:, None, :]
    link = np.flatnonzero(core_links)  # query * k * k + i * k + j
    size = m * k
    graph = csr_matrix(
        (np.ones(link.size, dtype=np.int8), (link // k, link // (k * k) * k + link % k)),
        shape=(size, size),
    )
    _, component = connected_components(graph, directed=False)
    node = np.arange(size)
    core_flat = core.reshape(-1)
    # Each cluster is named after its first core point (its lowest index in the query).
    first_core = np.full(size, size, dtype=np.int64)
    np.minimum.at(first_core, component[core_flat], node[core_flat])
    root = first_core[component].reshape(m, k)
    is_first = core & (root == node.reshape(m, k))
    number = np.cumsum(is_first, axis=1) - 1  # clusters numbered in order of their first point
    root_column = np.where(core, root - np.arange(m)[:, None] * k, 0)
    core_label = np.where(core, np.take_along_axis(number, root_column, axis=1), k)
    # A border point joins the lowest-numbered cluster with a core point within its reach.
    labels = np.where(core, core_label, NOISE)
    border_query, border_i = np.nonzero(~core)
    reaches = within[border_query, border_i] & core[border_query]
    nearest = np.where(reaches, core_label[border_query], k).min(axis=1)
    labels[border_query, border_i] = np.where(nearest < k, nearest, NOISE)
    return labels
