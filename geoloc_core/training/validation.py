"""Per-epoch validation: nearest-neighbour retrieval accuracy of held-out images against the
reference set, the same measurement as the benchmarks (so tuning never touches them)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from geoloc_core.geo.distance import geodesic_km
from geoloc_core.geo.metrics import summarize_errors
from geoloc_core.models.alignment import GeoAlignmentModel
from geoloc_core.retrieval.index import build_flat_index
from geoloc_core.retrieval.predict import predict_nearest
from geoloc_core.training.dataset import AlignmentData
from geoloc_core.training.embed import embed_retrieval
from geoloc_core.training.shard_stream import ShardStream


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


@torch.no_grad()
def streamed_retrieval_accuracy(
    model: GeoAlignmentModel,
    reference: ShardStream,
    queries: ShardStream,
    thresholds_km: Sequence[float],
    batch_size: int = 256,
) -> dict[str, float]:
    """retrieval_accuracy for sets read as streams (train.order: shards): each query's best
    reference is kept while the reference goes by a batch at a time, so memory holds the
    queries' vectors and one batch, not an index of the whole reference set."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device

    def vectors(positions, source: ShardStream) -> torch.Tensor:
        return model.retrieval_embedding(source.batch(positions).to(device)).float()

    wanted = torch.cat([vectors(p, queries) for p in queries.in_order(batch_size)])
    best = torch.full((len(queries),), -torch.inf, device=device)
    where = torch.zeros(len(queries), dtype=torch.int64, device=device)
    for positions in reference.in_order(batch_size):
        score, row = (wanted @ vectors(positions, reference).t()).max(dim=1)
        better = score > best  # ties keep the earlier reference, as a flat index does
        best = torch.where(better, score, best)
        where = torch.where(better, torch.as_tensor(positions, device=device)[row], where)
    model.train(was_training)
    truth = queries.latlon(np.arange(len(queries)))
    predicted = reference.latlon(where.cpu().numpy())
    errors = geodesic_km(truth[:, 0], truth[:, 1], predicted[:, 0], predicted[:, 1])
    return summarize_errors(errors, thresholds_km)
