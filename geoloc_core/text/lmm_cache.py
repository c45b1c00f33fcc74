"""LMM answers on disk, keyed by a hash of the whole request, so a re-run asks nothing twice.

The key covers everything that shapes an answer (model, messages with place fields and image,
temperature, max_tokens), never the API key or the server address: the same question to the
same model is the same answer, whichever endpoint served it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def request_key(payload: Mapping[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResponseCache:
    """One small JSON file per answer under cache_dir/<2 hex>/<key>.json (atomic writes)."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = Path(cache_dir)

    def _path(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        path = self._path(key)
        if not path.is_file():
            return None
        return str(json.loads(path.read_text())["text"])

    def put(self, key: str, model: str, text: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = json.dumps({"key": key, "model": model, "text": text}, ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            handle.write(record)
        Path(tmp).replace(path)
