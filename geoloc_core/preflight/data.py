"""Is the data the settings name on this machine, and how many items will each stage see?

Counts come from the data where it is there (the demo world's settings, a CSV's size), else
from the datasets' published sizes, said as such."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geoloc_core.preflight.report import Problem
from geoloc_core.preflight.weights import fetch_command

MP16PRO_ROWS = 4_654_532  # MP16-Pro's metadata rows (G3's release; ~4.1M photos still live)
CSV_SAMPLE_BYTES = 1 << 20  # a CSV's rows are estimated from its size and its first MiB


@dataclass(frozen=True)
class ItemCounts:
    reference: int  # reference + validation images (features, segmentation, texts, model)
    validation: int  # of which held out (evaluated like a benchmark)
    benchmarks: dict[str, int]  # benchmark -> queries
    basis: str

    @property
    def queries(self) -> int:
        """Every query the per-benchmark stages see (validation included)."""
        return self.validation + sum(self.benchmarks.values())

    @property
    def images(self) -> int:
        """Every image the per-image stages see (reference and benchmark images)."""
        return self.reference + sum(self.benchmarks.values())


def csv_rows(path: Path) -> int:
    """Rows of a CSV (without its header), exact for a small file, estimated from the mean
    row length of its first MiB for a large one."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(CSV_SAMPLE_BYTES)
    lines = head.count(b"\n")
    if size <= CSV_SAMPLE_BYTES or lines < 2:
        return max(0, lines - 1 + (0 if head.endswith(b"\n") or not head else 1))
    return int(size / (len(head) / lines)) - 1


def data_problems(root: Path, params: dict[str, Any]) -> list[Problem]:
    data, names = params["data"], params["benchmarks"]["names"]
    problems = []
    source = data["source"]
    if source == "demo" and not (Path(root) / data["root"] / "manifest.csv").is_file():
        problems.append(
            Problem("data", f"the demo world is not in {data['root']}", "geoloc demo-world")
        )
    if source == "mp16pro":
        if not (Path(root) / data["mp16pro_csv"]).is_file():
            problems.append(
                Problem(
                    "data",
                    f"MP16-Pro's CSV {data['mp16pro_csv']} is missing",
                    fetch_command("mp16pro"),
                )
            )
        if not any(glob.glob(str(Path(root) / g)) for g in data["mp16pro_archives"]):
            archives = ", ".join(data["mp16pro_archives"])
            problems.append(
                Problem(
                    "data",
                    f"no MP16-Pro image archive matches {archives}",
                    fetch_command("mp16pro"),
                )
            )
    if source == "folder" and not (Path(root) / data["folder_images"]).is_dir():
        problems.append(
            Problem(
                "data",
                f"the photo folder {data['folder_images']} is missing",
                f"put geotagged photos in {data['folder_images']}",
            )
        )
    for name in names:
        if f"{name}_csv" not in data:
            continue  # validation and the demo benchmarks come with the reference source
        csv, images = Path(root) / data[f"{name}_csv"], Path(root) / data[f"{name}_images"]
        missing = [str(p.relative_to(root)) for p in (csv, images) if not p.exists()]
        if missing:
            problems.append(
                Problem(
                    "data",
                    f"benchmark {name}: {' and '.join(missing)} missing",
                    fetch_command(name),
                )
            )
    return problems


def item_counts(root: Path, params: dict[str, Any]) -> ItemCounts:
    data, world, manifest = params["data"], params["demo_world"], params["manifest"]
    basis = []
    if data["source"] == "demo":
        validation = world["reference_sites"] * world["validation_views"]
        reference = world["reference_sites"] * world["reference_views"] + validation
        basis.append("demo_world settings")
    elif data["source"] == "mp16pro":
        csv = Path(root) / data["mp16pro_csv"]
        reference = csv_rows(csv) if csv.is_file() else MP16PRO_ROWS
        basis.append("MP16-Pro CSV size" if csv.is_file() else "MP16-Pro's published rows")
    else:
        folder = Path(root) / data["folder_images"]
        reference = sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0
        basis.append("the photo folder")
    if data["source"] != "demo":
        validation = int(reference * data["validation_fraction"])
    if "validation" not in params["benchmarks"]["names"]:
        validation = 0
    benchmarks = {}
    for name in params["benchmarks"]["names"]:
        if name == "validation":
            continue  # part of the reference images
        if name == "demo-street":
            benchmarks[name] = world["street_sites"] * world["street_views"]
        elif name == "demo-unseen":
            benchmarks[name] = world["unseen_sites"] * world["unseen_views"]
        else:
            csv = Path(root) / data.get(f"{name}_csv", "")
            expected = manifest.get(f"expected_rows_{name}")
            if csv.is_file():
                benchmarks[name] = csv_rows(csv)
            elif expected:
                benchmarks[name] = int(expected[-1])
            else:
                benchmarks[name] = 0
    return ItemCounts(reference, validation, benchmarks, ", ".join(basis))
