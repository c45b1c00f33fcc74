"""Geolocate arbitrary image files with the trained model and index (the `geoloc predict` path)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geoloc_core.data.images import load_batch
from geoloc_core.data.manifest import read_manifest
from geoloc_core.paths import ProjectPaths
from geoloc_core.retrieval.index import load_index
from geoloc_core.retrieval.predict import predict_nearest
from geoloc_core.steps.training import load_model
from geoloc_core.training.embed import embed_images


def predict_images(root: Path, images: Sequence[Path], top_k: int = 5) -> list[dict[str, Any]]:
    """One result per input, in order; an unreadable file gets an error entry, not an exception."""
    paths = ProjectPaths(root)
    model = load_model(paths)
    index = load_index(paths.index_file)
    meta = read_manifest(paths.index_meta)
    ids = [str(p) for p in images]
    stack, positions, failures = load_batch(ids, list(images), model.image_size)
    results: list[dict[str, Any]] = [{"image": i} for i in ids]
    for failure in failures:
        results[ids.index(failure.id)]["error"] = failure.reason
    if len(stack):
        predicted = predict_nearest(
            index, meta[["lat", "lon"]].to_numpy(np.float64), embed_images(model, stack), top_k
        )
        for row, position in enumerate(positions):
            results[position].update(
                lat=float(predicted.lat[row]),
                lon=float(predicted.lon[row]),
                score=float(predicted.scores[row, 0]),
                neighbours=meta["id"].to_numpy()[predicted.neighbour_positions[row]].tolist(),
            )
    return results
