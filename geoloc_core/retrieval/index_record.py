"""The index's record (index.json): the parts, variant and model its vectors came from, checked
against the model a query is embedded with, so a query never meets vectors of another model."""

from __future__ import annotations

import json
from typing import Any

from geoloc_core.file_hash import file_sha256
from geoloc_core.paths import ProjectPaths


def index_record(paths: ProjectPaths) -> dict[str, Any]:
    """What the index holds (parts, variant, model); checked against the model a query uses."""
    path = paths.index_record
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: materialize retrieval_index first")
    record = json.loads(path.read_text())
    if record["model_sha256"] != file_sha256(paths.model_weights):
        raise ValueError(
            f"the index in {paths.index_dir} was built from another model than "
            f"{paths.model_weights}: re-materialize reference_embeddings and retrieval_index"
        )
    return record
