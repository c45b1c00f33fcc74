"""`geoloc fetch NAME`: one catalogue entry fetched, verified and recorded, then its data report,
data.dvc and its licence terms."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

from geoloc_core.dvc_lock import dvc_write_lock
from geoloc_core.fetch.catalogue import Catalogue, Entry, load_catalogue
from geoloc_core.fetch.checksums import FetchError
from geoloc_core.fetch.dvc_record import RAW, record_raw_data
from geoloc_core.fetch.hub import fetch_hub
from geoloc_core.fetch.lock import FetchLock
from geoloc_core.fetch.outcome import FetchedFile
from geoloc_core.fetch.plain_http import fetch_http_file
from geoloc_core.fetch.report import DataReport, data_report
from geoloc_core.params import load_params

LOG = logging.getLogger(__name__)
REPORTS = Path("reports/fetch")


@dataclass(frozen=True)
class FetchResult:
    name: str
    entry: Entry
    files: list[FetchedFile]
    report: DataReport | None
    dvc: str  # what happened to data.dvc ("" when the entry writes nothing under data/raw)
    params_notes: list[str]

    @property
    def received(self) -> int:
        return sum(f.received for f in self.files)


def params_mismatches(entry: Entry, data_cfg: Mapping[str, Any]) -> list[str]:
    """Where params.yaml's data paths differ from where the catalogue puts the files: the
    pipeline reads params, so such a fetch would not be seen."""
    if entry.dataset not in ("im2gps3k", "yfcc4k", "mp16pro"):
        return []
    files = {spec.to for spec in entry.http} | {
        spec.to for spec in (entry.hub.files if entry.hub else ()) if spec.to
    }
    folders = {spec.extract_images_to for spec in entry.http if spec.extract_images_to}
    notes = []
    csv_key = f"{entry.dataset}_csv"
    if data_cfg.get(csv_key) not in files:
        notes.append(f"params data.{csv_key} is {data_cfg.get(csv_key)}, not where the fetch "
                     f"puts the CSV ({sorted(files)})")
    images_key = f"{entry.dataset}_images"
    if folders and data_cfg.get(images_key) not in folders:
        notes.append(f"params data.{images_key} is {data_cfg.get(images_key)}, not where the "
                     f"fetch puts the photos ({sorted(folders)})")
    return notes


def _network_error(exc: BaseException) -> bool:
    """The hub's HTTP errors and transport failures (huggingface_hub raises its HTTP client's
    own exception types for those), as opposed to a bug."""
    return isinstance(exc, (HfHubHTTPError, LocalEntryNotFoundError, OSError)) or type(
        exc
    ).__module__.split(".")[0].startswith("httpx")


def _download(name: str, entry: Entry, root: Path) -> list[FetchedFile]:
    lock = FetchLock.for_project(root)
    entry_lock = lock.entry(name)
    files: list[FetchedFile] = []
    try:
        if entry.hub is not None:
            try:
                files += fetch_hub(entry.hub, entry_lock, root)
            except FetchError:
                raise
            except Exception as exc:
                if not _network_error(exc):
                    raise
                first = (str(exc).splitlines() or [""])[0]
                raise FetchError(
                    f"the hub refused or could not be reached for {entry.hub.repo_id} at "
                    f"{entry.hub.revision} ({type(exc).__name__}: {first}); check HF_ENDPOINT "
                    "and the network, and HF_TOKEN for a gated repository; run the fetch "
                    "again to resume"
                ) from exc
        for spec in entry.http:
            files.append(fetch_http_file(spec, entry_lock, root))
    finally:
        lock.save()  # what was verified stays recorded even when a later file fails
    return files


def fetch(
    name: str,
    root: Path,
    *,
    catalogue: Catalogue | None = None,
    report: bool = True,
    dvc: bool = True,
) -> FetchResult:
    """Fetch one entry into the project at root (see the module docstring)."""
    entry = (catalogue or load_catalogue()).entry(name)
    params = load_params(root)
    writes_raw = entry.dataset is not None
    if writes_raw:
        with dvc_write_lock(root, [root / RAW]):
            files = _download(name, entry, root)
    else:
        files = _download(name, entry, root)
    data = None
    if report and entry.dataset is not None:
        data = data_report(entry.dataset, root, params)
        data.write(root / REPORTS)
    dvc_line = record_raw_data(root) if (dvc and writes_raw) else ""
    notes = params_mismatches(entry, params["data"])
    return FetchResult(name, entry, files, data, dvc_line, notes)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def summary(result: FetchResult, root: Path) -> str:
    """What `geoloc fetch` prints."""
    lines = [f"fetch {result.name}: {result.entry.description}"]
    for f in result.files:
        where = ""
        if f.path is not None:
            where = str(f.path.relative_to(root)) if f.path.is_relative_to(root) else str(f.path)
        lines.append(f"  {f.status:24} {f.label}  {_size(f.size)}  {where}")
    lines.append(f"  downloaded {_size(result.received)}; sizes and sha256 recorded in fetch.lock")
    lines += [f"  WARNING: {note}" for note in result.params_notes]
    if result.report is not None:
        lines.append(result.report.text())
        lines.append(f"  (all problems: {REPORTS}/{result.report.dataset}-problems.csv)")
    if result.dvc:
        lines.append(result.dvc)
    licence = result.entry.licence
    lines += [f"licence: {licence.name}", f"  {licence.terms}", f"  {licence.url}"]
    return "\n".join(lines)


def catalogue_listing(catalogue: Catalogue | None = None) -> str:
    """`geoloc fetch --list`: every name, its source and licence."""
    catalogue = catalogue or load_catalogue()
    lines = []
    for name, entry in catalogue.entries.items():
        sources = [f"hub {entry.hub.repo_id}@{entry.hub.revision}"] if entry.hub else []
        sources += [spec.url for spec in entry.http]
        lines.append(f"{name:22} {'; '.join(sources)}")
        lines.append(f"{'':22} licence: {entry.licence.name}")
    return "\n".join(lines)


def run_fetch(
    names: list[str],
    root: Path,
    *,
    catalogue_file: Path | None = None,
    report: bool = True,
    dvc: bool = True,
    list_only: bool = False,
) -> int:
    """The `geoloc fetch` command: 0 when every entry was fetched and its data can be used, 1
    when a data report refuses the data, 2 on a fetch error (message on stderr)."""
    if not logging.getLogger().handlers:  # geoloc's own progress notes, not every request
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
        logging.getLogger("geoloc_core").setLevel(logging.INFO)
    catalogue = load_catalogue(catalogue_file) if catalogue_file else load_catalogue()
    if list_only or not names:
        print(catalogue_listing(catalogue))
        return 0 if list_only else 2
    code = 0
    for name in names:
        try:
            result = fetch(name, root, catalogue=catalogue, report=report, dvc=dvc)
        except FetchError as exc:
            print(f"geoloc: error: fetch {name}: {exc}", file=sys.stderr)
            return 2
        print(summary(result, root))
        if result.report is not None and result.report.refused:
            code = 1
    return code
