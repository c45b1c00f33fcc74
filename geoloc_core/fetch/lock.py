"""fetch.lock (project root, committed): what the first fetch of each entry saw, so that every
later fetch, on any clone, gets and verifies the same bytes.

Per entry: the hub commit a branch revision resolved to, the files a glob matched at that
commit, and the size and sha256 of every file fetched (keyed by its hub path or its URL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

LOCK_NAME = "fetch.lock"
HEADER = (
    "# Written by `geoloc fetch` (geoloc_core/fetch/lock.py): the commit each hub revision\n"
    "# resolved to and the size and sha256 of every file fetched. Commit it: later fetches\n"
    "# verify against it. Delete an entry to re-pin it.\n"
)


@dataclass(frozen=True)
class FileRecord:
    size: int
    sha256: str


@dataclass
class EntryLock:
    """One catalogue entry's record; `commit` is None for an entry without a hub source."""

    revision: str | None = None  # the catalogue's revision the commit was resolved from
    commit: str | None = None
    globs: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, FileRecord] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)  # optional files the commit lacks

    def pin(self, revision: str, commit: str) -> None:
        """Pin a (new) commit; what was recorded at another commit no longer applies."""
        if self.commit != commit:
            hub_keys = [key for key in self.files if not key.startswith(("http://", "https://"))]
            for key in hub_keys:
                del self.files[key]
            self.globs.clear()
            self.absent.clear()
        self.revision, self.commit = revision, commit

    def as_yaml(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.commit is not None:
            out["revision"] = self.revision
            out["commit"] = self.commit
        if self.globs:
            out["globs"] = {k: list(v) for k, v in sorted(self.globs.items())}
        if self.absent:
            out["absent"] = sorted(self.absent)
        out["files"] = {
            key: {"size": rec.size, "sha256": rec.sha256} for key, rec in sorted(self.files.items())
        }
        return out

    @classmethod
    def from_yaml(cls, data: dict[str, Any]) -> EntryLock:
        files = {
            str(key): FileRecord(int(value["size"]), str(value["sha256"]))
            for key, value in (data.get("files") or {}).items()
        }
        globs = {str(k): [str(p) for p in v] for k, v in (data.get("globs") or {}).items()}
        absent = [str(p) for p in data.get("absent") or []]
        return cls(data.get("revision"), data.get("commit"), globs, files, absent)


class FetchLock:
    """The whole lock file: read once, updated per entry, written back atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, EntryLock] = {}
        if path.is_file():
            data = yaml.safe_load(path.read_text()) or {}
            if not isinstance(data, dict):
                raise ValueError(f"{path} is not a mapping of entries; delete it to re-pin")
            try:
                self.entries = {str(k): EntryLock.from_yaml(v) for k, v in data.items()}
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ValueError(f"{path} is malformed ({exc}); delete it to re-pin") from exc

    @classmethod
    def for_project(cls, root: Path) -> FetchLock:
        return cls(root / LOCK_NAME)

    def entry(self, name: str) -> EntryLock:
        return self.entries.setdefault(name, EntryLock())

    def save(self) -> None:
        body = {
            name: lock.as_yaml()
            for name, lock in sorted(self.entries.items())
            if lock.commit or lock.files  # an entry whose first fetch failed records nothing
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(HEADER + yaml.safe_dump(body, sort_keys=False))
        tmp.replace(self.path)
