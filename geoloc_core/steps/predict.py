"""Step: geolocate a benchmark's images by nearest-neighbour retrieval."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from geoloc_core.data.manifest import read_manifest, write_manifest
from geoloc_core.paths import ProjectPaths
from geoloc_core.retrieval.index import load_index
from geoloc_core.retrieval.predict import predict_nearest
from geoloc_core.steps.training import load_model, load_split_images
from geoloc_core.training.embed import embed_images


def predict_benchmark(
    paths: ProjectPaths, benchmark: str, retrieval_section: Mapping[str, Any]
) -> dict[str, Any]:
    top_k = int(retrieval_section["top_k"])
    model = load_model(paths)
    index = load_index(paths.index_file)
    meta = read_manifest(paths.index_meta)
    manifest = read_manifest(paths.benchmark_manifest(benchmark))
    images, latlon, rows, failures = load_split_images(paths, manifest, benchmark, model.image_size)
    if len(images) == 0:
        raise ValueError(f"no decodable images in benchmark '{benchmark}' ({len(failures)} failed)")
    queries = embed_images(model, images, progress=True, desc=benchmark)
    predicted = predict_nearest(index, meta[["lat", "lon"]].to_numpy(np.float64), queries, top_k)
    neighbours = meta["id"].to_numpy()[predicted.neighbour_positions]
    table = pd.DataFrame(
        {
            "id": rows["id"],
            "lat": latlon[:, 0],
            "lon": latlon[:, 1],
            "pred_lat": predicted.lat,
            "pred_lon": predicted.lon,
            "score": predicted.scores[:, 0],
            "neighbours": [" ".join(row) for row in neighbours],
        }
    )
    write_manifest(table, paths.predictions(benchmark))
    return {"predictions": len(table), "failed_images": len(failures), "top_k": top_k}
