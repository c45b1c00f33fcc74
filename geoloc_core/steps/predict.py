"""Step: geolocate a benchmark's images by nearest-neighbour retrieval.

Queries are embedded from the same caches as the reference set (backbone features, and the
segmentation for the dual-view variants), with the same function, so index and queries agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from geoloc_core.data.manifest import read_manifest, write_manifest
from geoloc_core.paths import ProjectPaths
from geoloc_core.retrieval.index import load_index
from geoloc_core.retrieval.predict import predict_nearest
from geoloc_core.steps.training import load_trained
from geoloc_core.training.dataset import AlignmentData
from geoloc_core.training.embed import embed_retrieval
from geoloc_core.training.project_inputs import model_inputs, rows_with_inputs


def predict_benchmark(
    paths: ProjectPaths, benchmark: str, retrieval_section: Mapping[str, Any]
) -> dict[str, Any]:
    top_k = int(retrieval_section["top_k"])
    trained = load_trained(paths)
    features, segmentation = model_inputs(paths, trained)
    index = load_index(paths.index_file)
    meta = read_manifest(paths.index_meta)
    manifest = read_manifest(paths.benchmark_manifest(benchmark))
    rows, missing = rows_with_inputs(manifest, features, segmentation)
    if rows.empty:
        raise ValueError(
            f"no image of benchmark '{benchmark}' has cached inputs ({len(missing)} missing, "
            "e.g. " + "; ".join(missing["reason"].head(3)) + "): materialize backbone_features"
            " and segmentation_cache with this benchmark in params benchmarks.names"
        )
    data = AlignmentData(rows["id"].tolist(), features, segmentation)
    queries = embed_retrieval(trained.model, data, progress=True, desc=benchmark)
    predicted = predict_nearest(index, meta[["lat", "lon"]].to_numpy(np.float64), queries, top_k)
    neighbours = meta["id"].to_numpy()[predicted.neighbour_positions]
    table = pd.DataFrame(
        {
            "id": rows["id"],
            "lat": rows["lat"].to_numpy(np.float64),
            "lon": rows["lon"].to_numpy(np.float64),
            "pred_lat": predicted.lat,
            "pred_lon": predicted.lon,
            "score": predicted.scores[:, 0],
            "neighbours": [" ".join(row) for row in neighbours],
        }
    )
    write_manifest(table, paths.predictions(benchmark))
    return {
        "variant": trained.model.config.variant,
        "predictions": len(table),
        "failed_images": len(missing),
        "top_k": top_k,
    }
