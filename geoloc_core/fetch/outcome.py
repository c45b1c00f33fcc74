"""What happened to each file of a fetch, for the summary and the tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DOWNLOADED = "downloaded"
PRESENT = "present, verified"
REPLACED = "corrupt, fetched again"
ABSENT = "absent at the revision (optional)"
JOINED = "joined from its parts"


@dataclass(frozen=True)
class FetchedFile:
    label: str  # the hub path or the URL
    path: Path | None  # where it is now (None: optional and absent)
    status: str
    size: int = 0
    sha256: str = ""
    received: int = 0  # body bytes this fetch downloaded for it (0 when verified in place)
