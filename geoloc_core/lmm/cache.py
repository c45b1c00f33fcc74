"""LMM answers on disk: one small JSON file per key, written atomically as soon as it arrives.

A write goes to a temporary file in the same folder and is renamed over the target, so a
reader, or a rerun after a SIGKILL mid-write, sees the whole record or none. Files are not
fsynced: a killed process loses nothing, a power cut may lose the last answers (they are then
simply asked again).
Records never hold the API key or the server address; the keys are hashes of what shapes an
answer. The LMM stage stores each answer under its own key: a hash of the provider, model,
messages (images as hashes of their bytes), temperature, max_tokens, image detail and the
answer's index. n is not in the key on purpose: answers are independent draws, so raising n
from 5 to 10 keeps the first five and asks only for five more.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from geoloc_core.params import canonical_json

# Bump when the code changes what a cached answer means for the same request.
CACHE_FORMAT = "geoloc-lmm-answer/1"


def atomic_write_text(path: Path, text: str) -> None:
    """Write text to path so that path holds either its old content or all of the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).unlink()
        raise


class JsonRecordCache:
    """cache_dir/<2 hex>/<key>.json; a torn or foreign file reads as a miss, never an error."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = Path(cache_dir)

    def path(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            record = json.loads(self.path(key).read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return record if isinstance(record, dict) and record.get("key") == key else None

    def put(self, key: str, record: Mapping[str, Any]) -> None:
        payload = {**record, "key": key}
        atomic_write_text(self.path(key), json.dumps(payload, ensure_ascii=False))

    def count(self) -> int:
        return sum(1 for _ in self.cache_dir.glob("??/*.json"))


def _without_image_bytes(value: Any) -> Any:
    """The messages with every data URL replaced by the hash of its bytes (keys stay small)."""
    if isinstance(value, str) and value.startswith("data:"):
        return "sha256:" + hashlib.sha256(value.encode("ascii", "replace")).hexdigest()
    if isinstance(value, Mapping):
        return {key: _without_image_bytes(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_image_bytes(item) for item in value]
    return value


def prompt_key(
    provider: str,
    model: str,
    messages: Any,
    temperature: float,
    max_tokens: int,
    detail: str,
) -> str:
    """What decides one prompt's answers: never the API key, the server address or n."""
    payload = {
        "format": CACHE_FORMAT,
        "provider": provider,
        "model": model,
        "messages": _without_image_bytes(messages),
        "temperature": float(temperature),
        "max_tokens": int(max_tokens),
        "detail": detail,
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def sample_key(prompt: str, sample: int) -> str:
    """The key of answer number `sample` of a prompt (0-based)."""
    return hashlib.sha256(f"{prompt}:{sample}".encode()).hexdigest()
