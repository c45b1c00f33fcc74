"""Steps: embed the reference split with the trained model, then index it with FAISS.

Reference vectors are the variant's retrieval embedding (models/variants.py) computed from the
cached backbone features and segmentation: exactly what a query is embedded as.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from geoloc_core.data.manifest import read_manifest, write_manifest
from geoloc_core.paths import ProjectPaths
from geoloc_core.retrieval.index import build_flat_index, save_index
from geoloc_core.steps.training import load_trained
from geoloc_core.training.dataset import AlignmentData
from geoloc_core.training.embed import embed_retrieval
from geoloc_core.training.project_inputs import model_inputs, rows_with_inputs

EMBEDDINGS_FILE = "reference.npy"
EMBEDDING_IDS_FILE = "reference_ids.csv"


def embed_reference(paths: ProjectPaths, index_section: Mapping[str, Any]) -> dict[str, Any]:
    """Embeddings in fp16 (half the disk, retrieval-neutral) with their ids and coordinates."""
    trained = load_trained(paths)
    features, segmentation = model_inputs(paths, trained)
    manifest = read_manifest(paths.reference_manifest)
    rows, missing = rows_with_inputs(
        manifest[manifest["split"] == "reference"], features, segmentation
    )
    data = AlignmentData(rows["id"].tolist(), features, segmentation)
    embeddings = embed_retrieval(
        trained.model, data, int(index_section["batch_size"]), progress=True, desc="reference"
    )
    paths.embeddings_dir.mkdir(parents=True, exist_ok=True)
    tmp = paths.embeddings_dir / "reference.tmp.npy"
    np.save(tmp, embeddings.astype(np.float16))
    tmp.replace(paths.embeddings_dir / EMBEDDINGS_FILE)
    write_manifest(rows[["id", "lat", "lon"]], paths.embeddings_dir / EMBEDDING_IDS_FILE)
    return {
        "variant": trained.model.config.variant,
        "vectors": len(embeddings),
        "dim": int(embeddings.shape[1]),
        "failed_images": len(missing),
    }


def build_index(paths: ProjectPaths, index_section: Mapping[str, Any]) -> dict[str, Any]:
    if index_section["metric"] != "inner_product":
        raise ValueError(
            f"index.metric '{index_section['metric']}' is not supported; use inner_product"
        )
    source = paths.embeddings_dir / EMBEDDINGS_FILE
    if not source.is_file():
        raise FileNotFoundError(f"{source} is missing: materialize reference_embeddings first")
    embeddings = np.load(source).astype(np.float32)
    index = build_flat_index(embeddings)
    save_index(index, paths.index_file)
    write_manifest(read_manifest(paths.embeddings_dir / EMBEDDING_IDS_FILE), paths.index_meta)
    return {"vectors": int(index.ntotal), "dim": int(index.d)}
