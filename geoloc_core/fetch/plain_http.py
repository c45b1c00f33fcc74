"""Files over plain HTTP: downloaded resumably, checked by sha256 (the catalogue's, else the one
fetch.lock recorded at the first fetch), and unzipped where the catalogue says."""

from __future__ import annotations

import logging
from pathlib import Path

from geoloc_core.fetch.archives import extract_photos
from geoloc_core.fetch.catalogue import HttpFile
from geoloc_core.fetch.checksums import Expected, FetchError, mismatch
from geoloc_core.fetch.http_download import download
from geoloc_core.fetch.lock import EntryLock, FileRecord
from geoloc_core.fetch.outcome import DOWNLOADED, PRESENT, REPLACED, FetchedFile

LOG = logging.getLogger(__name__)


def _expected(spec: HttpFile, lock: EntryLock) -> Expected:
    expected = Expected(spec.sha256, spec.size)
    record = lock.files.get(spec.url)
    if record is not None:
        expected = expected.merged(Expected(record.sha256, record.size), spec.url)
    return expected


def _by_hand(spec: HttpFile, dest: Path) -> FetchError:
    return FetchError(
        f"{dest} is missing and {spec.url} is a download page, not the file: open it in a "
        f"browser, download {dest.name}, put it at {dest} and run the fetch again (it is then "
        "verified, recorded in fetch.lock and unpacked)"
    )


def fetch_http_file(spec: HttpFile, lock: EntryLock, root: Path) -> FetchedFile:
    dest = root / spec.to
    expected = _expected(spec, lock)
    status = DOWNLOADED
    if dest.exists():
        why, sha = mismatch(dest, expected)
        if not why:
            outcome = FetchedFile(spec.url, dest, PRESENT, dest.stat().st_size, sha)
            if not expected.known_sha256:
                LOG.info("%s: no checksum known; recording the file present (%s)", dest, sha)
            return _finish(spec, lock, root, outcome)
        if spec.download_page:
            raise FetchError(
                f"{dest} fails its check ({why}); it was put there by hand: replace it with the "
                f"file from {spec.url}, or delete the '{spec.url}' record in fetch.lock if the "
                "new file is the right one"
            )
        LOG.warning("%s is corrupt (%s): fetching it again", dest, why)
        dest.unlink()
        status = REPLACED
    if spec.download_page:
        raise _by_hand(spec, dest)
    received = 0
    for attempt in (1, 2):
        received += download(spec.url, dest, expected_size=expected.size).received
        why, sha = mismatch(dest, expected)
        if not why:
            outcome = FetchedFile(spec.url, dest, status, dest.stat().st_size, sha, received)
            return _finish(spec, lock, root, outcome)
        LOG.warning("%s failed its check after download (%s); attempt %d of 2", dest, why, attempt)
        dest.unlink()
        status = REPLACED
    raise FetchError(f"{spec.url}: the downloaded bytes fail their check twice ({why})")


def _finish(spec: HttpFile, lock: EntryLock, root: Path, outcome: FetchedFile) -> FetchedFile:
    lock.files[spec.url] = FileRecord(outcome.size, outcome.sha256)
    if spec.extract_images_to and outcome.path is not None:
        done = extract_photos(outcome.path, root / spec.extract_images_to)
        LOG.info("%s: %d photos, %d written to %s", outcome.path.name, done.photos, done.written,
                 spec.extract_images_to)
    return outcome
