"""The record every import writes (import.json): what it read and what it wrote, by SHA-256.

The record is what lineage needs: the MLflow run of the import carries the same digests, and a
step that adopts an imported artifact checks the bytes it reads against this file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from geoloc_core.file_hash import check_sha256, file_sha256

RECORD_FILE = "import.json"


def write_record(
    folder: Path, kind: str, sources: Mapping[str, Path | str], details: Mapping[str, Any]
) -> dict[str, Any]:
    """import.json over every file under folder (relative paths) and every source file; a
    source that is a name, not a file (a hub id), is recorded as given."""
    folder = Path(folder)
    outputs = {
        str(f.relative_to(folder)): file_sha256(f)
        for f in sorted(folder.rglob("*"))
        if f.is_file() and f.name != RECORD_FILE
    }
    record = {
        "kind": kind,
        "sources": {
            name: (
                {"path": str(Path(source).resolve()), "sha256": file_sha256(Path(source))}
                if Path(str(source)).is_file()
                else {"name": str(source)}
            )
            for name, source in sources.items()
        },
        "outputs": outputs,
        **details,
    }
    (folder / RECORD_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def read_record(folder: Path, kind: str | None = None) -> dict[str, Any]:
    """The record of an import (of this kind, when given), every output checked against its
    digest."""
    file = Path(folder) / RECORD_FILE
    fix = f"run `geoloc import {kind or 'g3|geoclip'}` again"
    if not file.is_file():
        raise FileNotFoundError(f"{folder} holds no import ({RECORD_FILE} missing): {fix}")
    record = json.loads(file.read_text())
    if kind is not None and record.get("kind") != kind:
        raise ValueError(f"{file} records a {record.get('kind')!r} import, not {kind!r}: {fix}")
    for name, digest in record["outputs"].items():
        check_sha256(Path(folder) / name, digest, fix)
    return record
