"""Hub files through huggingface_hub, at the commit the catalogue or fetch.lock pins.

HF_ENDPOINT, HF_HOME and HF_HUB_CACHE are read when a fetch starts (huggingface_hub reads them
once, at import). Files without a destination go into the hub cache with hf_hub_download, where
transformers and open_clip find them; its own retry resumes a broken transfer with a Range
request. Files with a destination (datasets, possibly hundreds of GB) take the URL, ETag and
size from huggingface_hub's metadata call and their bytes through http_download, whose `.part`
file survives a killed process. Every file is checked after download, and again on every later
fetch, against its sha256 (the catalogue's, fetch.lock's, or the hub's LFS ETag) or its git
blob id; a corrupt file is deleted and fetched again once.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from huggingface_hub import (
    HfApi,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    try_to_load_from_cache,
)
from huggingface_hub.file_download import repo_folder_name
from huggingface_hub.utils import build_hf_headers

from geoloc_core.fetch.catalogue import HubFile, HubSource, is_glob
from geoloc_core.fetch.checksums import Expected, FetchError, mismatch
from geoloc_core.fetch.http_download import download
from geoloc_core.fetch.lock import EntryLock, FileRecord
from geoloc_core.fetch.outcome import (
    ABSENT,
    DOWNLOADED,
    JOINED,
    PRESENT,
    REPLACED,
    FetchedFile,
)

LOG = logging.getLogger(__name__)
DEFAULT_ENDPOINT = "https://huggingface.co"


@dataclass(frozen=True)
class HubEnvironment:
    """Where the hub is and where its cache lies, read from the environment at call time."""

    endpoint: str
    cache_dir: Path

    @classmethod
    def from_environ(cls) -> HubEnvironment:
        endpoint = os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")
        if os.environ.get("HF_HUB_CACHE"):
            cache = Path(os.environ["HF_HUB_CACHE"])
        elif os.environ.get("HF_HOME"):
            cache = Path(os.environ["HF_HOME"]) / "hub"
        else:
            base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
            cache = base / "huggingface" / "hub"
        return cls(endpoint, cache.expanduser())


@dataclass(frozen=True)
class RemoteFile:
    size: int | None
    etag: str | None  # the LFS sha256, else the git blob id


@dataclass(frozen=True)
class Snapshot:
    """A repository's files at one commit (one metadata request)."""

    commit: str
    files: dict[str, RemoteFile]

    def matching(self, pattern: str) -> list[str]:
        return sorted(p for p in self.files if fnmatch.fnmatchcase(p, pattern))


@dataclass
class _Listings:
    """Snapshots asked for lazily: a fetch whose lock already says everything asks nothing."""

    env: HubEnvironment
    source: HubSource
    by_revision: dict[str, Snapshot] = field(default_factory=dict)

    def at(self, revision: str) -> Snapshot:
        if revision not in self.by_revision:
            info = HfApi(endpoint=self.env.endpoint).repo_info(
                self.source.repo_id,
                revision=revision,
                repo_type=self.source.repo_type,
                files_metadata=True,
            )
            files = {
                s.rfilename: RemoteFile(s.size, s.lfs.sha256 if s.lfs else s.blob_id)
                for s in info.siblings or []
            }
            snapshot = Snapshot(str(info.sha), files)
            self.by_revision[revision] = self.by_revision[snapshot.commit] = snapshot
        return self.by_revision[revision]


def _commit(source: HubSource, lock: EntryLock, listings: _Listings) -> str:
    if source.pinned:
        return source.revision
    if lock.commit and lock.revision == source.revision:
        return lock.commit
    commit = listings.at(source.revision).commit
    LOG.info("%s: revision %s is commit %s; pinned in fetch.lock", source.repo_id,
             source.revision, commit)
    return commit


def _paths(spec: HubFile, commit: str, lock: EntryLock, listings: _Listings) -> list[str]:
    if not is_glob(spec.path):
        return [spec.path]
    if spec.path not in lock.globs:
        lock.globs[spec.path] = listings.at(commit).matching(spec.path)
    matches = lock.globs[spec.path]
    if spec.to is not None and not spec.to.endswith("/") and len(matches) > 1:
        raise FetchError(
            f"'{spec.path}' matches {len(matches)} files at commit {commit} ({matches[:5]}) but "
            f"one file goes to {spec.to}: name the file in geoloc_core/fetch/catalogue.yaml"
        )
    return matches


def _destination(root: Path, spec: HubFile, path: str) -> Path | None:
    if spec.to is None:
        return None
    if spec.to.endswith("/"):
        return root / spec.to / PurePosixPath(path).name
    return root / spec.to


def _download_headers(env: HubEnvironment, location: str) -> dict[str, str]:
    """The hub's headers (token included) only for the hub's own host, never for a CDN."""
    headers = build_hf_headers()
    if urlparse(location).netloc != urlparse(env.endpoint).netloc:
        headers.pop("authorization", None)
        headers.pop("Authorization", None)
    return headers


def _to_file(
    env: HubEnvironment, source: HubSource, commit: str, path: str, dest: Path, expected: Expected
) -> FetchedFile:
    label = f"{source.repo_id}/{path}"
    status = DOWNLOADED
    if dest.exists():
        why, sha = mismatch(dest, expected)
        if not why:
            return FetchedFile(label, dest, PRESENT, dest.stat().st_size, sha)
        LOG.warning("%s is corrupt (%s): fetching it again", dest, why)
        dest.unlink()
        status = REPLACED
    received = 0
    for attempt in (1, 2):
        url = hf_hub_url(source.repo_id, path, repo_type=source.repo_type, revision=commit,
                         endpoint=env.endpoint)
        meta = get_hf_file_metadata(url, endpoint=env.endpoint)
        expected = expected.merged(Expected(size=meta.size, etag=meta.etag), label)
        transfer = download(meta.location, dest, headers=_download_headers(env, meta.location),
                            expected_size=expected.size)
        received += transfer.received
        why, sha = mismatch(dest, expected)
        if not why:
            return FetchedFile(label, dest, status, dest.stat().st_size, sha, received)
        LOG.warning("%s failed its check after download (%s); attempt %d of 2", dest, why, attempt)
        dest.unlink()
        status = REPLACED
    raise FetchError(f"{label} at {commit}: the downloaded bytes fail their check twice ({why})")


def _to_cache(
    env: HubEnvironment, source: HubSource, commit: str, path: str, expected: Expected
) -> FetchedFile:
    label = f"{source.repo_id}/{path}"

    def get(force: bool) -> Path:
        return Path(hf_hub_download(
            source.repo_id, path, repo_type=source.repo_type, revision=commit,
            cache_dir=env.cache_dir, endpoint=env.endpoint, force_download=force,
        ))

    cached = try_to_load_from_cache(source.repo_id, path, cache_dir=env.cache_dir,
                                    revision=commit, repo_type=source.repo_type)
    status = PRESENT if isinstance(cached, str) else DOWNLOADED
    for _ in (1, 2):
        pointer = get(force=False)
        blob = pointer.resolve()
        # the cache names each blob by its ETag (symlinked caches only)
        named = Expected(etag=blob.name) if pointer.is_symlink() else Expected()
        checked = expected.merged(named, label)
        why, sha = mismatch(blob, checked)
        if not why:
            size = blob.stat().st_size
            received = 0 if status == PRESENT else size  # hf_hub_download's own transfer
            return FetchedFile(label, pointer, status, size, sha, received)
        LOG.warning("%s in the hub cache is corrupt (%s): fetching it again", label, why)
        blob.unlink(missing_ok=True)
        pointer.unlink(missing_ok=True)
        status = REPLACED
    raise FetchError(f"{label} at {commit}: the cached bytes fail their check twice ({why})")


def point_ref(env: HubEnvironment, source: HubSource, commit: str) -> None:
    """refs/<branch> -> the pinned commit, so from_pretrained(repo_id) finds it offline."""
    name = "main" if source.pinned else source.revision
    folder = env.cache_dir / repo_folder_name(repo_id=source.repo_id, repo_type=source.repo_type)
    ref = folder / "refs" / name
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_text(commit)


@dataclass
class _Fetch:
    """One hub source's fetch at its pinned commit, recording into the entry's lock."""

    env: HubEnvironment
    source: HubSource
    commit: str
    lock: EntryLock
    listings: _Listings
    root: Path

    def one(self, spec: HubFile, path: str, dest: Path | None) -> FetchedFile:
        """One file into dest (None: the hub cache), verified and recorded."""
        label = f"{self.source.repo_id}/{path}"
        expected = Expected(spec.sha256, spec.size)
        record = self.lock.files.get(path)
        if record is not None:
            expected = expected.merged(Expected(record.sha256, record.size), path)
        elif spec.optional and path in self.lock.absent:
            return FetchedFile(label, None, ABSENT)
        else:  # not seen before: the hub states its size and ETag
            remote = self.listings.at(self.commit).files.get(path)
            if remote is None:
                if spec.optional:
                    self.lock.absent.append(path)
                    return FetchedFile(label, None, ABSENT)
                raise FetchError(
                    f"{self.source.repo_id} has no file '{path}' at commit {self.commit}; fix "
                    "geoloc_core/fetch/catalogue.yaml or mark the file optional"
                )
            expected = expected.merged(Expected(size=remote.size, etag=remote.etag), path)
        if dest is None:
            outcome = _to_cache(self.env, self.source, self.commit, path, expected)
        else:
            outcome = _to_file(self.env, self.source, self.commit, path, dest, expected)
        if outcome.path is not None:
            self.lock.files[path] = FileRecord(outcome.size, outcome.sha256)
        return outcome

    def joined(self, spec: HubFile, parts: list[str]) -> list[FetchedFile]:
        """Split parts of one archive, downloaded into spec.parts_to and concatenated in name
        order into spec.join_into. Once the joined archive matches its record, the parts are
        not needed again (they may be deleted) and nothing is downloaded."""
        assert spec.join_into is not None and spec.parts_to is not None
        target = self.root / spec.join_into
        key = f"joined:{spec.join_into}"
        record = self.lock.files.get(key)
        if record is not None and target.exists():
            why, sha = mismatch(target, Expected(record.sha256, record.size))
            if not why:
                return [FetchedFile(key, target, PRESENT, record.size, sha)]
            LOG.warning("%s is corrupt (%s): joining its parts again", target, why)
        outcomes = [self.one(spec, p, self.root / spec.parts_to / PurePosixPath(p).name)
                    for p in parts]
        size, sha = join_parts([o.path for o in outcomes if o.path is not None], target)
        if record is not None and sha != record.sha256:
            raise FetchError(f"{target}: joined from verified parts but not the archive "
                             "recorded in fetch.lock; delete that record if the parts changed")
        self.lock.files[key] = FileRecord(size, sha)
        outcomes.append(FetchedFile(key, target, JOINED, size, sha))
        return outcomes


def join_parts(parts: list[Path], target: Path) -> tuple[int, str]:
    """Concatenate parts into target (via target.part); (size, sha256) of the result."""
    digest = hashlib.sha256()
    size = 0
    tmp = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    out.write(block)
                    digest.update(block)
                    size += len(block)
    tmp.replace(target)
    return size, digest.hexdigest()


def fetch_hub(source: HubSource, lock: EntryLock, root: Path) -> list[FetchedFile]:
    """Every file of the source at its pinned commit, verified; records go into lock."""
    env = HubEnvironment.from_environ()
    listings = _Listings(env, source)
    commit = _commit(source, lock, listings)
    lock.pin(source.revision, commit)
    run = _Fetch(env, source, commit, lock, listings, root)
    outcomes: list[FetchedFile] = []
    for spec in source.files:
        paths = _paths(spec, commit, lock, listings)
        if not paths:
            if not spec.optional:
                raise FetchError(f"no file of {source.repo_id} at {commit} matches '{spec.path}'")
            outcomes.append(FetchedFile(f"{source.repo_id}/{spec.path}", None, ABSENT))
            continue
        split = [p for p in paths if not p.endswith(".tar")]
        if spec.join_into is not None and split:
            if len(split) != len(paths):
                raise FetchError(
                    f"'{spec.path}' matches whole archives and split parts at {commit} "
                    f"({paths[:6]}): name them apart in geoloc_core/fetch/catalogue.yaml"
                )
            outcomes += run.joined(spec, paths)
            continue
        outcomes += [run.one(spec, path, _destination(root, spec, path)) for path in paths]
    if any(spec.to is None for spec in source.files):
        point_ref(env, source, commit)
    return outcomes
