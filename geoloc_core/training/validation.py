"""Per-epoch validation: nearest-neighbour retrieval accuracy of held-out images against the
reference set, the same measurement as the benchmarks (so tuning never touches them)."""

from __future__ import annotations

from collections.abc import Sequence

from geoloc_core.geo.distance import geodesic_km
from geoloc_core.geo.metrics import summarize_errors
from geoloc_core.models.alignment import GeoAlignmentModel
from geoloc_core.retrieval.index import build_flat_index
from geoloc_core.retrieval.predict import predict_nearest
from geoloc_core.training.dataset import AlignmentData
from geoloc_core.training.embed import embed_retrieval


def retrieval_accuracy(
    model: GeoAlignmentModel,
    reference: AlignmentData,
    queries: AlignmentData,
    thresholds_km: Sequence[float],
    batch_size: int = 256,
) -> dict[str, float]:
    """acc_<t>km, median_km, mean_km, n of the queries' top-1 neighbours."""
    if reference.latlon is None or queries.latlon is None:
        raise ValueError("validation needs coordinates for the reference and the queries")
    index = build_flat_index(embed_retrieval(model, reference, batch_size=batch_size))
    predicted = predict_nearest(
        index, reference.latlon, embed_retrieval(model, queries, batch_size=batch_size), 1
    )
    errors = geodesic_km(queries.latlon[:, 0], queries.latlon[:, 1], predicted.lat, predicted.lon)
    return summarize_errors(errors, thresholds_km)
