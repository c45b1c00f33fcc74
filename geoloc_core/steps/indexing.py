"""Steps: embed the reference split with the trained model, one shard at a time, then index
every shard with FAISS.

Reference vectors are made of params embeddings.parts (the frozen image embedding and the
trained embeddings the variant computes), from the cached backbone features and segmentation:
exactly what a query is embedded as. Each shard records the parts and the model it came from,
and the index refuses shards that disagree, so a query is never compared with vectors of
another model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from geoloc_core.data.manifest import read_manifest, write_manifest
from geoloc_core.file_hash import check_sha256, file_sha256
from geoloc_core.kill_point import kill_point
from geoloc_core.models.variants import retrieval_parts
from geoloc_core.paths import SHARD_ID_COLUMNS, ProjectPaths
from geoloc_core.retrieval.index import build_index_from_shards, refine_building_file, save_index
from geoloc_core.retrieval.index_settings import IndexSettings
from geoloc_core.retrieval.settings import EmbeddingSettings
from geoloc_core.segmentation.sharding import shard_index, shard_of
from geoloc_core.steps.training import load_trained
from geoloc_core.training.dataset import AlignmentData
from geoloc_core.training.embed import embed_retrieval
from geoloc_core.training.project_inputs import model_inputs, rows_with_inputs


def embed_reference_shard(
    paths: ProjectPaths,
    embeddings_section: Mapping[str, Any],
    shard_key: str,
    n_shards: int,
) -> dict[str, Any]:
    """One shard of reference embeddings in fp16 (half the disk, retrieval-neutral)."""
    settings = EmbeddingSettings.from_section(embeddings_section)
    trained = load_trained(paths)
    parts = retrieval_parts(trained.model.config.variant, settings.parts)
    features, segmentation = model_inputs(paths, trained)
    manifest = read_manifest(paths.reference_manifest)
    shard = shard_index(shard_key, n_shards, "features.n_shards")
    reference = manifest[manifest["split"] == "reference"]
    mine = reference[[shard_of(str(i), n_shards) == shard for i in reference["id"]]]
    rows, missing = rows_with_inputs(mine, features, segmentation)
    vectors_file, ids_file, record_file = paths.embedding_shard(shard_key)
    vectors_file.parent.mkdir(parents=True, exist_ok=True)
    if rows.empty:
        vectors = np.zeros((0, 0), np.float16)
    else:
        data = AlignmentData(rows["id"].tolist(), features, segmentation)
        vectors = embed_retrieval(
            trained.model,
            data,
            batch_size=settings.batch_size,
            progress=True,
            desc=f"reference {shard_key}",
            parts=parts,
        ).astype(np.float16)
    tmp = vectors_file.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(vectors_file)
    kill_point("embedding-vectors-written")  # new vectors, the old ids and record
    write_manifest(rows[list(SHARD_ID_COLUMNS)], ids_file)
    record = {
        "parts": list(parts),
        "variant": trained.model.config.variant,
        "model_sha256": file_sha256(paths.model_weights),
        "shard": shard_key,
        "n_shards": n_shards,
        "vectors": len(vectors),
        "vectors_sha256": file_sha256(vectors_file),
    }
    record_tmp = record_file.with_name(record_file.name + ".tmp")
    record_tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    record_tmp.replace(record_file)  # last: the shard is finished when its record says so
    return {
        "variant": record["variant"],
        "parts": "+".join(parts),
        "vectors": record["vectors"],
        "dim": int(vectors.shape[1]) if len(vectors) else 0,
        "failed_images": len(missing),
    }


def build_index(
    paths: ProjectPaths,
    index_section: Mapping[str, Any],
    shard_keys: Sequence[str],
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The FAISS index over every embedding shard, added shard by shard in key order."""
    settings = IndexSettings.from_section(index_section)
    records = [_shard_record(paths, key) for key in shard_keys]
    model_sha = file_sha256(paths.model_weights)
    for key, record in zip(shard_keys, records, strict=True):
        if record["model_sha256"] != model_sha or record["parts"] != records[0]["parts"]:
            raise ValueError(
                f"embedding shard {key} was made by another model or other parts "
                f"({record['parts']}): re-materialize reference_embeddings"
            )
    filled = [key for key, record in zip(shard_keys, records, strict=True) if record["vectors"]]
    loaders = [_vector_loader(paths, key, records[shard_keys.index(key)]) for key in filled]
    refine_file = refine_building_file(paths.index_file)  # IVF-PQ's fp16 copy, on disk
    index = build_index_from_shards(loaders, settings, log, refine_file)
    save_index(index, paths.index_file)
    ids = [read_manifest(paths.embedding_shard(key)[1]) for key in filled]
    write_manifest(pd.concat(ids, ignore_index=True), paths.index_meta)
    summary = {
        "type": settings.type,
        "parts": records[0]["parts"],
        "variant": records[0]["variant"],
        "model_sha256": model_sha,
        "vectors": int(index.ntotal),
        "dim": int(index.d),
    }
    paths.index_record.write_text(json.dumps(summary, indent=2) + "\n")
    return {**summary, "parts": "+".join(summary["parts"])}


def _shard_record(paths: ProjectPaths, key: str) -> dict[str, Any]:
    record_file = paths.embedding_shard(key)[2]
    if not record_file.is_file():
        raise FileNotFoundError(
            f"{record_file} is missing: materialize reference_embeddings[{key}] first"
        )
    return json.loads(record_file.read_text())


def _vector_loader(
    paths: ProjectPaths, key: str, record: Mapping[str, Any]
) -> Callable[[], np.ndarray]:
    """Loads one shard's vectors when the index needs them, after checking their bytes."""

    def load() -> np.ndarray:
        vectors_file = paths.embedding_shard(key)[0]
        fix = f"re-materialize reference_embeddings[{key}]"
        check_sha256(vectors_file, record.get("vectors_sha256"), fix)
        return np.load(vectors_file)

    return load
