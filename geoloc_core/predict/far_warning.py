"""A warning for a photo far from everything the model knows, calibrated on validation.

The decision's score (the verification cosine in the GPS space, or the retrieval cosine with
verification.method top1) is compared with the scores of the validation benchmark's own
decisions, which the pipeline wrote (artifacts/predictions/validation.csv, with the metrics'
errors in artifacts/errors/validation.csv). The threshold is the 5th percentile of the scores
of the validation decisions that were wrong by more than 2500 km (the metrics' continent
threshold); with fewer than MIN_WRONG such photos, of every validation decision. A photo that
scores below it matches its best candidate less than nearly every wrong answer of validation
did: its answer is a guess. Read once when the predictor loads (the standard library only).

A served model's bundle records it: the served_model step reads validation's decisions and
errors (its upstream in the registry), so it runs after them and its bundle follows them.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

WRONG_KM = 2500.0
PERCENTILE = 5.0
MIN_WRONG = 5
CALIBRATION_BENCHMARK = "validation"


@dataclass(frozen=True)
class FarCalibration:
    threshold: float
    photos: int  # validation decisions the threshold comes from
    wrong_only: bool  # True: only those wrong by more than WRONG_KM

    def warning(self, score: float | None) -> str | None:
        """The warning line for a decision's score, None when it is not below the threshold."""
        if score is None or math.isnan(score) or score >= self.threshold:
            return None
        which = (
            f"validation decisions wrong by more than {WRONG_KM:,.0f} km"
            if self.wrong_only
            else "validation decisions"
        )
        return (
            f"far from everything the model knows: the decision's score {score:.4f} is below "
            f"{self.threshold:.4f}, the {PERCENTILE:g}th percentile of {self.photos} {which}; "
            "the answer is a guess"
        )


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default), values non-empty."""
    ordered = sorted(values)
    at = (len(ordered) - 1) * q / 100
    low = math.floor(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def calibrate(predictions: Path, errors: Path) -> FarCalibration | None:
    """The threshold from a benchmark's decisions and their errors; None when either file is
    missing or holds no scored decision (nothing validated yet: no warning is given)."""
    if not (predictions.is_file() and errors.is_file()):
        return None
    with errors.open(newline="") as handle:
        error_km = {row["id"]: float(row["error_km"]) for row in csv.DictReader(handle)}
    scored: list[tuple[float, float]] = []
    with predictions.open(newline="") as handle:
        for row in csv.DictReader(handle):
            score = float(row["score"]) if row.get("score") not in (None, "") else math.nan
            if not math.isnan(score) and row["id"] in error_km:
                scored.append((score, error_km[row["id"]]))
    if not scored:
        return None
    wrong = [score for score, km in scored if km > WRONG_KM]
    if len(wrong) >= MIN_WRONG:
        return FarCalibration(percentile(wrong, PERCENTILE), len(wrong), True)
    every = [score for score, _ in scored]
    return FarCalibration(percentile(every, PERCENTILE), len(every), False)
