"""G3's FAISS index (IndexFlatIP over [unit CLIP | unit image->text | unit image->GPS], rows in
the order of MP16_Pro_filtered.csv) as this project's index: the same rows, scaled to unit norm
as every geoloc index is (the ranking is unchanged: each G3 row has norm sqrt(3)), with its id
table (id = IMG_ID, lat, lon), its checksum and its record (the parts and the model)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pandas as pd
from tqdm import tqdm

from geoloc_core.data.manifest import write_manifest
from geoloc_core.file_hash import file_sha256
from geoloc_core.models.persistence import MODEL_FILE
from geoloc_core.paths import SHARD_ID_COLUMNS
from geoloc_core.retrieval.index import save_index

ORDER_COLUMNS = {"IMG_ID": "id", "LAT": "lat", "LON": "lon"}
INDEX_FILE = "reference.faiss"  # the names of paths.index_file, index_meta and index_record
META_FILE = "reference_meta.csv"
RECORD_FILE = "index.json"
NORMALISE_ROWS = 65_536


def read_order(order_file: Path) -> pd.DataFrame:
    """The id table of G3's rows: IMG_ID, LAT, LON of MP16_Pro_filtered.csv, in its order."""
    header = pd.read_csv(order_file, nrows=0).columns
    missing = [c for c in ORDER_COLUMNS if c not in header]
    if missing:
        raise ValueError(
            f"--order {order_file} lacks the columns {missing}: give G3's MP16_Pro_filtered.csv"
        )
    table = pd.read_csv(order_file, usecols=list(ORDER_COLUMNS), dtype={"IMG_ID": str})
    table = table.rename(columns=ORDER_COLUMNS)[list(SHARD_ID_COLUMNS)]
    bad = ~(table["lat"].between(-90, 90) & table["lon"].between(-180, 180))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"--order {order_file}: row {row + 2} has no valid LAT/LON")
    return table


def import_g3_index(
    folder: Path, index_file: Path, order_file: Path, model_dir: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """Write folder/{reference.faiss(+.sha256), reference_meta.csv, index.json}."""
    if not index_file.is_file():
        raise FileNotFoundError(f"--index {index_file} does not exist")
    if not order_file.is_file():
        raise FileNotFoundError(f"--order {order_file} does not exist")
    order = read_order(order_file)
    log(f"import g3: reading the index {index_file}")
    index = faiss.read_index(str(index_file))
    if not isinstance(index, faiss.IndexFlatIP):
        raise ValueError(
            f"--index {index_file} is a {type(index).__name__}; G3 publishes an IndexFlatIP"
        )
    width = json.loads((model_dir / "config.json").read_text())["shapes"]["pooled_dim"]
    if index.d != 3 * width:
        raise ValueError(
            f"--index {index_file} has dimension {index.d}; G3's vectors of this checkpoint "
            f"have 3 x {width} = {3 * width}"
        )
    if index.ntotal != len(order):
        raise ValueError(
            f"--index {index_file} holds {index.ntotal} rows but --order {order_file} lists "
            f"{len(order)}: they must be G3's index and the CSV it was built from"
        )
    _normalise_rows(index)
    folder.mkdir(parents=True, exist_ok=True)
    save_index(index, folder / INDEX_FILE)
    write_manifest(order, folder / META_FILE)
    record = {
        "type": "flat",
        "parts": ["frozen", "image_text", "image_gps"],
        "variant": "g3",
        "model_sha256": file_sha256(model_dir / MODEL_FILE),
        "vectors": int(index.ntotal),
        "dim": int(index.d),
        "imported_from": "g3",
    }
    (folder / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return {"vectors": record["vectors"], "dim": record["dim"]}


def _normalise_rows(index: faiss.IndexFlatIP) -> None:
    """Scale every stored row to unit norm in place (no second copy of the vectors)."""
    stored = faiss.rev_swig_ptr(index.get_xb(), index.ntotal * index.d)
    vectors = np.asarray(stored).reshape(index.ntotal, index.d)
    for start in tqdm(range(0, index.ntotal, NORMALISE_ROWS), desc="index rows", unit="chunk"):
        block = vectors[start : start + NORMALISE_ROWS]
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        if not np.all(norms > 0) or not np.all(np.isfinite(norms)):
            row = start + int(np.flatnonzero(~((norms > 0) & np.isfinite(norms)).ravel())[0])
            raise ValueError(f"the index's row {row} is zero or not finite: not G3's index")
        block /= norms
