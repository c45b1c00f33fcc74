"""One file over plain HTTP(S), resumable: bytes go to `<dest>.part`, and an interrupted
transfer (in this process or a killed earlier one) continues with a Range request from the
bytes already there. The file is renamed into place only when complete."""

from __future__ import annotations

import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from geoloc_core.fetch.checksums import FetchError

LOG = logging.getLogger(__name__)
ATTEMPTS = 6
BACKOFF_S = 0.2
TIMEOUT_S = 60.0
CHUNK = 1 << 20
_TRANSIENT = (
    urllib.error.URLError,
    http.client.HTTPException,  # IncompleteRead, RemoteDisconnected, BadStatusLine
    ConnectionError,
    TimeoutError,
)


@dataclass(frozen=True)
class Transfer:
    """How many body bytes this call received (0 when the file was already complete)."""

    received: int


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _total_from(response: http.client.HTTPResponse, offset: int) -> int | None:
    content_range = response.headers.get("Content-Range")
    if content_range and "/" in content_range and not content_range.endswith("/*"):
        return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("Content-Length")
    return offset + int(length) if length is not None else None


def _refuse_page(response: http.client.HTTPResponse, url: str, dest: Path) -> None:
    kind = response.headers.get("Content-Type", "")
    if kind.startswith("text/html") and dest.suffix.lower() not in (".html", ".htm"):
        raise FetchError(
            f"{url} answered with a web page ({kind}), not {dest.name}: the link is a download "
            f"page or is dead. Download the file by hand and put it at {dest}, then run the "
            "fetch again (it is verified and recorded in fetch.lock)"
        )


class _Counter:
    """Body bytes received, kept when a transfer breaks off half-way."""

    def __init__(self) -> None:
        self.received = 0


def _attempt(
    url: str,
    part: Path,
    headers: Mapping[str, str],
    expected_size: int | None,
    dest: Path,
    counter: _Counter,
) -> int | None:
    """One request from where part ends; the total size if known."""
    offset = part.stat().st_size if part.exists() else 0
    request_headers = {"Accept-Encoding": "identity", **headers}
    if offset:
        request_headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=request_headers)
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the part may hold the whole file already
            stated = (exc.headers.get("Content-Range") or "").rsplit("/", 1)[-1]
            whole = int(stated) if stated.isdigit() else expected_size
            if whole == offset:
                return whole
            part.unlink()  # not a prefix of what is served now
            raise ConnectionError(f"{part} was not a prefix of the file served") from exc
        if exc.code in (408, 429) or exc.code >= 500:
            raise
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    with response:
        _refuse_page(response, url, dest)
        if offset and response.status != 206:  # the server ignored the Range: start over
            LOG.info("%s ignored the Range request; downloading from the start", url)
            offset = 0
        total = _total_from(response, offset)
        if expected_size is not None and total is not None and total != expected_size:
            raise FetchError(f"{url} serves {total} bytes but {expected_size} are expected")
        mode = "ab" if offset else "wb"
        with open(part, mode) as out, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, desc=dest.name, leave=False
        ) as bar:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                counter.received += len(chunk)
                bar.update(len(chunk))
    return total


def download(
    url: str,
    dest: Path,
    *,
    headers: Mapping[str, str] | None = None,
    expected_size: int | None = None,
) -> Transfer:
    """Download url to dest, resuming from dest.part; retried on transient errors."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    if part.exists() and expected_size is not None and part.stat().st_size > expected_size:
        part.unlink()  # longer than the file can be: not a prefix of it
    counter = _Counter()
    for attempt in range(1, ATTEMPTS + 1):
        try:
            total = _attempt(url, part, headers or {}, expected_size, dest, counter)
            have = part.stat().st_size if part.exists() else 0
            if total is None or have == total:
                os.replace(part, dest)
                return Transfer(counter.received)
            LOG.warning("%s: stream ended at %d of %d bytes; resuming", dest.name, have, total)
        except _TRANSIENT as exc:
            have = part.stat().st_size if part.exists() else 0
            LOG.warning(
                "%s: interrupted at %d bytes (%s); resuming (attempt %d of %d)",
                dest.name, have, exc, attempt, ATTEMPTS,
            )
        time.sleep(BACKOFF_S * attempt)
    raise FetchError(
        f"{url}: still incomplete after {ATTEMPTS} attempts; run the fetch again to resume "
        f"from the {part.stat().st_size if part.exists() else 0} bytes in {part}"
    )
