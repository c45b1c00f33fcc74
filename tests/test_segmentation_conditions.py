"""The demo provider errs like a published segmenter: more wrong class regions in fog, rain, snow
and at night, none of it when condition_errors is off, and the same errors on every run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geoloc_core.segmentation.condition_errors import (
    PUBLISHED,
    ViewConditions,
    degrade_for_conditions,
    region_error_rate,
    world_conditions,
)
from geoloc_core.segmentation.providers.base import WorkItem
from geoloc_core.segmentation.providers.demo import DemoProvider, read_label_map
from geoloc_core.segmentation.settings import SegmentationSettings
from tests.test_segmentation_units import SECTION

CLEAR = ViewConditions("clear", "day", 0.0)


def test_published_rates_order_the_conditions():
    # the cited table (Kerim et al., BMVC 2022): DeepLabV3+ on Cityscapes, then ACDC splits
    assert region_error_rate(CLEAR) == pytest.approx(0.22)
    assert region_error_rate(ViewConditions("fog", "day", 0.0)) == pytest.approx(0.54)
    assert 0.0 < PUBLISHED.normal <= 1.0
    for condition in ("fog", "rain", "snow", "night"):
        assert 0.0 < PUBLISHED.by_condition[condition] < PUBLISHED.normal
    clear = region_error_rate(CLEAR)
    assert clear == pytest.approx(1.0 - PUBLISHED.normal)
    assert region_error_rate(ViewConditions("overcast", "day", 0.0)) == clear
    night = region_error_rate(ViewConditions("clear", "night", 0.0))
    assert night == pytest.approx(1.0 - PUBLISHED.by_condition["night"])
    foggy_night = region_error_rate(ViewConditions("fog", "night", 0.0))
    fog, night_iou = PUBLISHED.by_condition["fog"], PUBLISHED.by_condition["night"]
    expected = 1 - fog * night_iou / PUBLISHED.normal
    assert foggy_night == pytest.approx(expected)
    assert foggy_night > night > clear
    assert region_error_rate(ViewConditions("clear", "day", 0.9)) == pytest.approx(
        1.0 - PUBLISHED.by_condition["snow"]
    )
    assert region_error_rate(ViewConditions("clear", "day", 0.1)) == clear  # a dusting


def _many_regions() -> np.ndarray:
    """A 60 x 60 map of 36 class regions (10 x 10 px each)."""
    classes = np.arange(36, dtype=np.uint8).reshape(6, 6) + 1
    return np.kron(classes, np.ones((10, 10), dtype=np.uint8))


def _wrong_region_share(view: ViewConditions, images: int = 200) -> float:
    clean = _many_regions()
    wrong = [
        np.mean([(noisy[clean == k] != k).all() for k in np.unique(clean)])
        for noisy in (degrade_for_conditions(clean, view, 0, f"img-{i}") for i in range(images))
    ]
    return float(np.mean(wrong))


def test_degradation_follows_the_published_rate_and_is_seeded():
    night = ViewConditions("rain", "night", 0.0)
    assert _wrong_region_share(night) == pytest.approx(region_error_rate(night), abs=0.03)
    assert _wrong_region_share(CLEAR) == pytest.approx(region_error_rate(CLEAR), abs=0.03)
    clean = _many_regions()
    once = degrade_for_conditions(clean, night, 3, "img-a")
    assert np.array_equal(once, degrade_for_conditions(clean, night, 3, "img-a"))
    assert not np.array_equal(once, degrade_for_conditions(clean, night, 4, "img-a"))


def test_demo_provider_degrades_by_the_worlds_conditions(tiny_project: Path):
    world = tiny_project / "data" / "raw" / "demo"
    manifest = pd.read_csv(world / "manifest.csv", dtype=str, keep_default_na=False)
    items = [
        WorkItem(row.id, world / row.image, world / row.label)
        for row in manifest.itertuples(index=False)
    ]
    exact = DemoProvider(condition_errors=False).predict(items)
    degraded = DemoProvider(condition_errors=True, seed=0).predict(items)
    assert not exact.failures and not degraded.failures
    truth = [read_label_map(item.label) for item in items]
    assert all(np.array_equal(a, b) for a, b in zip(exact.label_maps, truth, strict=True))
    conditions = world_conditions(world / "manifest.csv")
    changed = [
        not np.array_equal(a, b) for a, b in zip(degraded.label_maps, truth, strict=True)
    ]
    rates = [region_error_rate(conditions[item.id]) for item in items]
    # views with a higher error rate are changed more often
    high = [c for c, r in zip(changed, rates, strict=True) if r >= np.median(rates)]
    low = [c for c, r in zip(changed, rates, strict=True) if r < np.median(rates)]
    assert any(changed)
    if low:
        assert np.mean(high) >= np.mean(low)
    again = DemoProvider(condition_errors=True, seed=0).predict(items)
    pairs = zip(again.label_maps, degraded.label_maps, strict=True)
    assert all(np.array_equal(a, b) for a, b in pairs)


def test_a_view_missing_from_the_world_fails_by_name(tiny_project: Path, tmp_path: Path):
    world = tiny_project / "data" / "raw" / "demo"
    row = pd.read_csv(world / "manifest.csv", dtype=str).iloc[0]
    item = WorkItem("stranger-01", world / row["image"], world / row["label"])
    prediction = DemoProvider(condition_errors=True).predict([item])
    assert not prediction.label_maps
    assert prediction.failures[0].id == "stranger-01"
    assert "condition_errors: false" in prediction.failures[0].reason


def test_condition_errors_decide_the_cache_content():
    on = SegmentationSettings.from_section({**SECTION, "condition_errors": True})
    off = SegmentationSettings.from_section({**SECTION, "condition_errors": False})
    assert on.fingerprint() != off.fingerprint()
    assert on.content()["seed"] == SECTION["seed"]
    with pytest.raises(Exception, match="condition_errors='yes'"):
        SegmentationSettings.from_section({**SECTION, "condition_errors": "yes"})
