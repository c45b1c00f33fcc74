"""The data report after a fetch: CSV rows against the photos present, every missing or
unreadable photo by id, the row count against the published one with the known pitfalls
explained. The CSVs are read by the project's own adapters (geoloc_core/data/sources), so a file
the pipeline would refuse (the 25,600-row YFCC list, swapped LAT/LON headers) is refused here,
with the adapter's message, before any step runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from geoloc_core.data.decode import probe_image
from geoloc_core.data.manifest import ManifestError
from geoloc_core.data.schema import SOURCE_PROBLEM
from geoloc_core.data.sources.benchmarks import benchmark_csv_manifest
from geoloc_core.data.sources.mp16pro import mp16pro_manifest
from geoloc_core.data.sources.places365_csv import KNOWN_DATASETS, YFCC25600_ROWS
from geoloc_core.fetch.archives import PHOTO_SUFFIXES

SHOWN = 20  # problems printed; all of them go to the CSV
EXPLAINED = {
    "im2gps3k": (
        "IM2GPS3k has 2,997 rows. The published photo archive holds 3,000 photos (G3 issue #6): "
        "a photo without a CSV row has no coordinates, so it is listed below as 'no row' and "
        "never evaluated; published results are over the 2,997 rows."
    ),
    "yfcc4k": (
        f"YFCC4k has 4,536 rows (Vo et al. 2017's list, as G3 and GeoDecoder evaluate it). A "
        f"CSV with {YFCC25600_ROWS:,} rows is yfcc25600 (YFCC26k), a different benchmark that "
        "an old link served instead (G3 issue #5): it is refused, never evaluated as YFCC4k."
    ),
    "mp16pro": (
        "MP16-Pro lists about 4.65M photos; its card says about 4.12M are still live, and the "
        "archives hold what the authors collected: rows without a photo are expected, listed "
        "below and quarantined by the manifest gate."
    ),
}


@dataclass
class DataReport:
    dataset: str
    lines: list[str] = field(default_factory=list)
    problems: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame({"id": [], "problem": []})
    )
    refused: str = ""  # the adapter's refusal: the data cannot be used as it is

    def text(self) -> str:
        out = [f"data report: {self.dataset}", *(f"  {line}" for line in self.lines)]
        if self.refused:
            out.append(f"  REFUSED: {self.refused}")
        shown = self.problems.head(SHOWN)
        for row in shown.itertuples(index=False):
            out.append(f"    {row.id}: {row.problem}")
        if len(self.problems) > SHOWN:
            out.append(f"    ... and {len(self.problems) - SHOWN} more")
        return "\n".join(out)

    def write(self, folder: Path) -> Path:
        """The report as text and every problem as CSV (reports/fetch/<dataset>*)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.problems.to_csv(folder / f"{self.dataset}-problems.csv", index=False)
        path = folder / f"{self.dataset}.txt"
        path.write_text(self.text() + "\n")
        return path


def _photos_in(folder: Path) -> set[str]:
    if not folder.is_dir():
        return set()
    return {p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES}


def _count_line(dataset: str, rows: int) -> str:
    known = KNOWN_DATASETS[dataset].rows
    if known is None:
        return f"{rows:,} CSV rows"
    verdict = "as published" if rows == known else f"published: {known:,}"
    return f"{rows:,} CSV rows ({verdict})"


def benchmark_report(
    dataset: str, root: Path, data_cfg: Mapping[str, Any], max_pixels: int
) -> DataReport:
    """IM2GPS3k or YFCC4k: rows vs photos in params data.<dataset>_images."""
    report = DataReport(dataset)
    csv_path = root / data_cfg[f"{dataset}_csv"]
    images = root / data_cfg[f"{dataset}_images"]
    report.lines.append(f"csv {csv_path.relative_to(root)}, photos {images.relative_to(root)}")
    try:
        frame = benchmark_csv_manifest(dataset, csv_path, images, root)
    except ManifestError as exc:
        report.refused = str(exc)
        return report
    on_disk = _photos_in(images)
    ids = frame["id"]
    problems: list[tuple[str, str]] = []
    counts = ids.value_counts()
    for image_id, times in counts[counts > 1].items():
        problems.append((image_id, f"IMG_ID appears {times} times in the CSV"))
    problems += [(f"row {i + 2}", "no IMG_ID") for i in frame.index[ids.isna()]]
    to_probe = []
    for image_id, escape in zip(ids, frame[SOURCE_PROBLEM], strict=True):
        if not isinstance(image_id, str):
            continue
        if escape:
            problems.append((image_id, escape))
        elif image_id not in on_disk:
            problems.append((image_id, "missing: the CSV row has no photo"))
        else:
            to_probe.append(image_id)
    unreadable = 0
    for image_id in tqdm(sorted(set(to_probe)), desc=f"probe {dataset}", unit="photo", leave=False):
        probe = probe_image(images / image_id, max_pixels)
        if probe.problem:
            problems.append((image_id, f"unreadable: {probe.problem}"))
            unreadable += 1
    row_ids = set(ids.dropna())
    extra = sorted(on_disk - row_ids)
    problems += [(name, "no row: a photo the CSV does not list (not evaluated)") for name in extra]
    missing = sum(1 for _, why in problems if why.startswith("missing"))
    report.lines += [
        _count_line(dataset, len(frame)),
        f"{len(on_disk):,} photos in the folder; {len(set(to_probe)) - unreadable:,} rows with a "
        f"readable photo, {missing:,} rows missing their photo, {unreadable:,} unreadable, "
        f"{len(extra):,} photos without a row",
        EXPLAINED[dataset],
    ]
    report.problems = pd.DataFrame(problems, columns=["id", "problem"])
    return report


def mp16pro_report(root: Path, data_cfg: Mapping[str, Any]) -> DataReport:
    """MP16-Pro: rows vs members of the archives params data.mp16pro_archives matches. Decoding
    4M photos is the manifest gate's job (reference_manifest), not this report's."""
    report = DataReport("mp16pro")
    csv_path = root / data_cfg["mp16pro_csv"]
    patterns = list(data_cfg["mp16pro_archives"])
    report.lines.append(f"csv {data_cfg['mp16pro_csv']}, archives {patterns}")
    try:
        frame = mp16pro_manifest(csv_path, patterns, root, float(data_cfg["validation_fraction"]))
    except ManifestError as exc:
        parts = sorted(p.name for p in csv_path.parent.glob("mp-16-images*")
                       if not p.name.endswith((".tar", ".part")))
        hint = (
            f" {csv_path.parent.relative_to(root)} holds {len(parts)} split parts of one "
            f"archive: join them in name order (`cat {' '.join(parts)} > mp-16-images.tar`), "
            "then delete the parts and run the fetch again."
        ) if parts else ""
        report.refused = str(exc) + hint
        return report
    located = frame["image"] != ""
    problems = frame.loc[frame[SOURCE_PROBLEM] != "", ["id", SOURCE_PROBLEM]]
    report.lines += [
        _count_line("mp16pro", len(frame)),
        f"{int(located.sum()):,} rows found in the archives, {int((~located).sum()):,} not",
        "photos are decoded by the manifest gate when reference_manifest is built",
        EXPLAINED["mp16pro"],
    ]
    report.problems = problems.rename(columns={SOURCE_PROBLEM: "problem"}).reset_index(drop=True)
    return report


def data_report(dataset: str, root: Path, params: Mapping[str, Any]) -> DataReport:
    if dataset == "mp16pro":
        return mp16pro_report(root, params["data"])
    max_pixels = int(params["manifest"]["max_image_pixels"])
    return benchmark_report(dataset, root, params["data"], max_pixels)
