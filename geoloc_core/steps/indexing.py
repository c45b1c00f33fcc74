"""Steps: embed the reference split with the trained model, then index it with FAISS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from geoloc_core.data.manifest import read_manifest, write_manifest
from geoloc_core.paths import ProjectPaths
from geoloc_core.retrieval.index import build_flat_index, save_index
from geoloc_core.steps.training import load_model, load_split_images
from geoloc_core.training.embed import embed_images

EMBEDDINGS_FILE = "reference.npy"
EMBEDDING_IDS_FILE = "reference_ids.csv"


def embed_reference(paths: ProjectPaths, index_section: Mapping[str, Any]) -> dict[str, Any]:
    """Embeddings in fp16 (half the disk, retrieval-neutral) with their ids and coordinates."""
    model = load_model(paths)
    manifest = read_manifest(paths.reference_manifest)
    images, _, rows, failures = load_split_images(paths, manifest, "reference", model.image_size)
    embeddings = embed_images(
        model, images, int(index_section["batch_size"]), progress=True, desc="reference"
    )
    paths.embeddings_dir.mkdir(parents=True, exist_ok=True)
    tmp = paths.embeddings_dir / "reference.tmp.npy"
    np.save(tmp, embeddings.astype(np.float16))
    tmp.replace(paths.embeddings_dir / EMBEDDINGS_FILE)
    write_manifest(rows[["id", "lat", "lon"]], paths.embeddings_dir / EMBEDDING_IDS_FILE)
    return {
        "vectors": len(embeddings),
        "dim": int(embeddings.shape[1]),
        "failed_images": len(failures),
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
