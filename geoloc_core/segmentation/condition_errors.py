"""Segmentation that errs like a real model: each demo view loses accuracy with its conditions.

The demo world knows every view's true label map, so without this the semantic view would be
perfect in fog and at night, and DualGeo's claim (semantics hold where pixels fail) would be
assumed rather than tested. A real segmenter's per-class IoU drops in adverse conditions; the
published drops below set, per view, the chance that a class region is relabelled as a wrong
class (noise.add_label_noise, unit "class"): with random wrong classes a region survives with
probability ~IoU, so the class IoU of the degraded maps follows the published mIoU.

The rates are DeepLabV3+'s mIoU trained on Cityscapes and tested on Cityscapes (normal) and on
ACDC's rain, fog, snow and night splits, as published by Kerim et al., "Semantic Segmentation
under Adverse Conditions: A Weather and Nighttime-aware Synthetic Data-based Approach", BMVC
2022 (arXiv:2210.05626), results table ("Baseline" rows; the authors' repository
lsmcolab/Semantic-Segmentation-under-Adverse-Conditions, assets/Quantitative_Results_BMVC_2022
.png). Those drops include the change of city and camera between the two datasets, so they are
an upper bound on the weather's own effect. Conditions combine as independent factors: a foggy
night keeps normal * (fog / normal) * (night / normal) of its regions. Overcast skies and dusk
count as normal: no published segmentation figure for either was found.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from geoloc_core.segmentation.noise import add_label_noise

SNOW_COVER_THRESHOLD = 0.3  # a view counts as snowy when this share of snowable ground is white
STREAM_SUFFIX = "#conditions"  # keeps this noise independent of segmentation.label_noise


@dataclass(frozen=True)
class PublishedIoU:
    """One model's mIoU in normal conditions and per adverse condition, as published."""

    model: str
    source: str
    normal: float
    by_condition: dict[str, float]

    def region_survival(self, conditions: tuple[str, ...]) -> float:
        survival = self.normal
        for condition in conditions:
            survival *= self.by_condition[condition] / self.normal
        return survival


PUBLISHED = PublishedIoU(
    model="DeepLabV3+ trained on Cityscapes",
    source="Kerim et al., BMVC 2022, arXiv:2210.05626, results table, Baseline row",
    normal=0.78,  # Cityscapes
    by_condition={"rain": 0.41, "fog": 0.46, "snow": 0.36, "night": 0.17},  # ACDC
)


@dataclass(frozen=True)
class ViewConditions:
    weather: str
    time_of_day: str
    snow_cover: float

    def adverse(self) -> tuple[str, ...]:
        """The published conditions this view is in (fog, rain, night, snow)."""
        found = [self.weather] if self.weather in ("fog", "rain") else []
        if self.time_of_day == "night":
            found.append("night")
        if self.snow_cover >= SNOW_COVER_THRESHOLD:
            found.append("snow")
        return tuple(found)


def region_error_rate(view: ViewConditions, published: PublishedIoU = PUBLISHED) -> float:
    """The chance that one class region of this view is given a wrong class."""
    return float(np.clip(1.0 - published.region_survival(view.adverse()), 0.0, 1.0))


@lru_cache(maxsize=8)
def world_conditions(manifest: Path) -> dict[str, ViewConditions]:
    """id -> conditions of every view in a demo world's manifest.csv."""
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
    needed = {"id", "weather", "time_of_day", "snow_cover"}
    if rows and not needed <= set(rows[0]):
        raise ValueError(
            f"{manifest} lacks {sorted(needed - set(rows[0]))}: regenerate the demo world "
            "(geoloc demo-world) with this version"
        )
    return {
        row["id"]: ViewConditions(row["weather"], row["time_of_day"], float(row["snow_cover"]))
        for row in rows
    }


def world_manifest_of(label: Path) -> Path:
    """A demo label map lives at <world>/labels/<split>/<id>.png; the manifest beside labels/."""
    return label.parents[2] / "manifest.csv"


def degrade_for_conditions(
    label_map: np.ndarray, view: ViewConditions, seed: int, image_id: str
) -> np.ndarray:
    """The label map a real segmenter would give under this view's conditions (seeded)."""
    return add_label_noise(
        label_map, region_error_rate(view), "class", seed, image_id + STREAM_SUFFIX
    )
