"""The manifest gate: bad rows go to a quarantine report (id, reason), the rest proceed while
the failure rate stays under params manifest.max_quarantine_fraction; above it, or when a
known dataset has the wrong number of rows, the gate fails and the blocking asset check that
reads its report stops everything downstream.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from geoloc_core.data.schema import SOURCE_PROBLEM
from geoloc_core.validation.expectations import (
    IMAGE_MIN_SIDE,
    IMAGE_PROBLEM,
    ROW,
    Validation,
    validate_frame,
)
from geoloc_core.validation.image_checks import probe_locations
from geoloc_core.validation.settings import GateSettings

HELPER_COLUMNS = (ROW, SOURCE_PROBLEM, IMAGE_PROBLEM, IMAGE_MIN_SIDE)
QUARANTINE_COLUMNS = ("id", "reason")


@dataclass(frozen=True)
class GateReport:
    """Everything the asset check shows; written as JSON next to the manifest."""

    dataset: str
    rows_in: int
    rows_accepted: int
    rows_quarantined: int
    failure_rate: float
    max_failure_rate: float
    expected_rows: list[int] | None
    row_count_ok: bool
    failures_by_rule: dict[str, int]
    expectations: list[dict[str, Any]]
    passed: bool
    message: str
    skipped: str = ""  # why the data set was not there to check (absent, not broken)


@dataclass(frozen=True)
class GateOutcome:
    accepted: pd.DataFrame
    quarantine: pd.DataFrame
    report: GateReport


def add_image_columns(
    frame: pd.DataFrame, project_root: Path, settings: GateSettings
) -> pd.DataFrame:
    """image_problem ("" if it decodes) and image_min_side for each row.

    Rows the adapter already rejected are not opened: their reason is known.
    """
    rejected = frame[SOURCE_PROBLEM].fillna("").astype(str) != ""
    images = [i if isinstance(i, str) else "" for i in frame["image"]]
    to_open = ["" if r else i for i, r in zip(images, rejected, strict=True)]
    probes = probe_locations(to_open, project_root, settings.max_image_pixels, settings.workers)
    problems = []
    sides = []
    for was_rejected, probe in zip(rejected, probes, strict=True):
        if probe is None:
            problems.append("" if was_rejected else "no image location")
            sides.append(float("nan"))
        else:
            problems.append(probe.problem)
            sides.append(float("nan") if probe.problem else float(probe.min_side))
    out = frame.copy()
    out[IMAGE_PROBLEM] = problems
    out[IMAGE_MIN_SIDE] = sides
    return out


def quarantine_table(frame: pd.DataFrame, validation: Validation) -> pd.DataFrame:
    """One row per failing manifest row: its id and every reason, in source order."""
    reasons: dict[int, list[str]] = {}
    for row, _rule, reason in validation.failures:
        reasons.setdefault(row, []).append(reason)
    ids = dict(zip(frame[ROW], frame["id"], strict=True))
    records = []
    for row in sorted(reasons):
        image_id = ids[row]
        text = "; ".join(dict.fromkeys(reasons[row]))
        if not isinstance(image_id, str) or not image_id:
            image_id, text = "", f"row {row} (no id): {text}"
        records.append((image_id, text))
    return pd.DataFrame(records, columns=list(QUARANTINE_COLUMNS))


def gate_manifest(
    frame: pd.DataFrame, settings: GateSettings, project_root: Path, dataset: str
) -> GateOutcome:
    """Validate every row; split into accepted rows and the quarantine; decide the gate."""
    work = frame.reset_index(drop=True).copy()
    if SOURCE_PROBLEM not in work.columns:
        work[SOURCE_PROBLEM] = ""
    work[ROW] = range(1, len(work) + 1)
    work = add_image_columns(work, project_root, settings)
    validation = validate_frame(work, settings)
    quarantine = quarantine_table(work, validation)
    bad_rows = {row for row, _, _ in validation.failures}
    accepted = work[~work[ROW].isin(bad_rows)].drop(columns=list(HELPER_COLUMNS))
    report = _report(dataset, work, accepted, bad_rows, validation, settings)
    return GateOutcome(accepted.reset_index(drop=True), quarantine, report)


def _report(
    dataset: str,
    work: pd.DataFrame,
    accepted: pd.DataFrame,
    bad_rows: set[int],
    validation: Validation,
    settings: GateSettings,
) -> GateReport:
    rows_in = len(work)
    rate = len(bad_rows) / rows_in if rows_in else 1.0
    by_rule = Counter(rule for _, rule, _ in validation.failures)
    passed = validation.table_ok and rate <= settings.max_failure_rate and len(accepted) > 0
    message = (
        f"{len(bad_rows)} of {rows_in} rows quarantined ({rate:.2%}; limit "
        f"{settings.max_failure_rate:.2%})"
    )
    if not validation.table_ok:
        low, high = settings.expected_rows or (0, 0)
        message += (
            f"; {rows_in} rows is outside the expected range [{low}, {high}] for {dataset} "
            f"(params manifest.expected_rows_{dataset}): an incomplete or different copy?"
        )
    elif rate > settings.max_failure_rate:
        message += ": over the limit, downstream assets are blocked"
    elif not len(accepted):
        message += ": no row left"
    return GateReport(
        dataset=dataset,
        rows_in=rows_in,
        rows_accepted=len(accepted),
        rows_quarantined=len(bad_rows),
        failure_rate=rate,
        max_failure_rate=settings.max_failure_rate,
        expected_rows=list(settings.expected_rows) if settings.expected_rows else None,
        row_count_ok=validation.table_ok,
        failures_by_rule=dict(sorted(by_rule.items())),
        expectations=[_jsonable(asdict(o)) for o in validation.outcomes],
        passed=passed,
        message=message,
    )


def skipped_report(dataset: str, reason: str) -> GateReport:
    """The report of a data set that is absent: nothing to check, so nothing to block (its
    empty manifest flows through every step); a present but broken one is gated as usual."""
    return GateReport(
        dataset=dataset,
        rows_in=0,
        rows_accepted=0,
        rows_quarantined=0,
        failure_rate=0.0,
        max_failure_rate=0.0,
        expected_rows=None,
        row_count_ok=True,
        failures_by_rule={},
        expectations=[],
        passed=True,
        message=f"skipped: {reason}",
        skipped=reason,
    )


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    """numpy scalars to Python numbers, anything else odd to text."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if hasattr(value, "item"):
            value = value.item()
        out[key] = value if isinstance(value, bool | int | float | str | type(None)) else str(value)
    return out


def write_report(report: GateReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(asdict(report), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def read_report(path: Path) -> GateReport:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: materialize the manifest asset first")
    return GateReport(**json.loads(path.read_text()))
