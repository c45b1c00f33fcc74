"""LMM answers on disk, keyed by a hash of the whole request, so a re-run asks nothing twice.

The key covers everything that shapes an answer (model, messages with place fields and image,
temperature, max_tokens), never the API key or the server address: the same question to the
same model is the same answer, whichever endpoint served it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from geoloc_core.lmm.cache import JsonRecordCache


def request_key(payload: Mapping[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResponseCache:
    """One small JSON file per answer under cache_dir/<2 hex>/<key>.json (atomic writes)."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = Path(cache_dir)
        self._records = JsonRecordCache(self.cache_dir)

    def get(self, key: str) -> str | None:
        record = self._records.get(key)
        return None if record is None else str(record["text"])

    def put(self, key: str, model: str, text: str) -> None:
        self._records.put(key, {"model": model, "text": text})
