"""HDBSCAN (scikit-learn, haversine) labels of each query's candidates: clusters with no eps.

DBSCAN needs one radius for every query, but the right one depends on how densely the reference
set covers the region (DualGeo lists tuning it as a limitation; dynamic thresholds as future
work). HDBSCAN builds the whole hierarchy of DBSCAN clusterings over all radii and keeps the
clusters that persist longest (excess of mass); only min_cluster_size and min_samples remain.
scikit-learn's defaults hold otherwise: no cluster_selection_epsilon, and the whole candidate
set is never one cluster (allow_single_cluster off).

A query with fewer candidates than min_samples or than two has no core distance, so no cluster:
all noise, as DBSCAN gives when no point is core.
"""

from __future__ import annotations

import numpy as np

NOISE = -1


def hdbscan_labels(
    lat: np.ndarray, lon: np.ndarray, min_cluster_size: int, min_samples: int
) -> np.ndarray:
    """HDBSCAN labels (n, k) of n queries' candidates, given as validated (n, k) degree arrays;
    one scikit-learn fit per query; -1 is noise."""
    from sklearn import config_context
    from sklearn.cluster import HDBSCAN

    n, k = lat.shape
    labels = np.full((n, k), NOISE, dtype=np.int64)
    if k < max(2, min_samples):
        return labels
    clusterer = HDBSCAN(
        min_cluster_size=min_cluster_size,
        min_samples=min_samples,
        metric="haversine",
        algorithm="ball_tree",
        copy=True,
    )
    radians = np.radians(np.stack([lat, lon], axis=-1))  # (n, k, 2): haversine wants [lat, lon]
    with config_context(assume_finite=True, skip_parameter_validation=True):
        for row in range(n):
            labels[row] = clusterer.fit(radians[row]).labels_
    return labels
