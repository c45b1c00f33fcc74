"""Nuisance conditions of a view (season, weather, time of day, camera, sensor) and how often
each split meets them. demo-street is deliberately shifted: more night, fog, rain, winter and
zoom than the reference set, so appearance changes while the semantics do not."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geoloc_core.demo_world.raster import Camera

SEASONS: tuple[str, ...] = ("spring", "summer", "autumn", "winter")
WEATHERS: tuple[str, ...] = ("clear", "overcast", "fog", "rain")
TIMES_OF_DAY: tuple[str, ...] = ("day", "dusk", "night")
SPLIT_CODES: dict[str, int] = {"reference": 0, "validation": 1, "demo-street": 2,
                               "demo-unseen": 3}
VIEW_STREAM = 4


@dataclass(frozen=True)
class ViewConditions:
    season: str = "summer"  # the local season at the site
    weather: str = "clear"
    time_of_day: str = "day"
    snow_cover: float = 0.0  # share of snowable surfaces under snow
    camera: Camera = field(default_factory=Camera)
    noise_sigma: float = 0.0  # Gaussian sensor noise, in 8-bit levels
    jpeg_quality: int | None = None  # None: no compression round trip
    noise_seed: int = 0


@dataclass(frozen=True)
class ConditionProfile:
    """Probabilities follow the order of SEASONS, WEATHERS and TIMES_OF_DAY."""

    season: tuple[float, float, float, float]
    weather: tuple[float, float, float, float]
    time_of_day: tuple[float, float, float]
    max_shift: float
    zoom: tuple[float, float]
    noise_sigma: tuple[float, float]
    jpeg_quality: tuple[int, int]


EVERYDAY = ConditionProfile(
    season=(0.25, 0.5, 0.2, 0.05),
    weather=(0.7, 0.22, 0.04, 0.04),
    time_of_day=(0.88, 0.09, 0.03),
    max_shift=0.04,
    zoom=(1.0, 1.15),
    noise_sigma=(0.5, 3.0),
    jpeg_quality=(60, 90),
)
SHIFTED = ConditionProfile(
    season=(0.1, 0.1, 0.3, 0.5),
    weather=(0.15, 0.2, 0.3, 0.35),
    time_of_day=(0.35, 0.3, 0.35),
    max_shift=0.08,
    zoom=(1.1, 1.5),
    noise_sigma=(2.0, 7.0),
    jpeg_quality=(30, 70),
)
# Unseen sites are seen in everyday conditions: that split measures the unknown place alone.
PROFILE_BY_SPLIT: dict[str, ConditionProfile] = {
    "reference": EVERYDAY, "validation": EVERYDAY, "demo-street": SHIFTED, "demo-unseen": EVERYDAY,
}


def snow_cover(climate: str, season: str, rng: np.random.Generator) -> float:
    """Snow lies in cold winters always, in temperate winters often, elsewhere never."""
    if climate == "cold" and season == "winter":
        return float(rng.uniform(0.7, 1.0))
    if climate == "cold" and season in ("spring", "autumn") and rng.random() < 0.5:
        return float(rng.uniform(0.1, 0.4))
    if climate == "temperate" and season == "winter" and rng.random() < 0.6:
        return float(rng.uniform(0.3, 0.8))
    return 0.0


def _pick(options: tuple[str, ...], probabilities: tuple[float, ...],
          rng: np.random.Generator) -> str:
    cumulative = np.cumsum(probabilities) / sum(probabilities)
    return options[int(np.searchsorted(cumulative, rng.random(), side="right"))]


def draw_conditions(seed: int, site_id: int, climate: str, split: str,
                    view: int) -> ViewConditions:
    """Conditions of one view, seeded by (seed, site, split, view) and nothing else, so the
    world does not depend on the order or the process that renders it."""
    profile = PROFILE_BY_SPLIT[split]
    rng = np.random.default_rng(
        np.random.SeedSequence([seed, VIEW_STREAM, site_id, SPLIT_CODES[split], view])
    )
    season = _pick(SEASONS, profile.season, rng)
    camera = Camera(
        shift_u=float(rng.uniform(-profile.max_shift, profile.max_shift)),
        shift_v=float(rng.uniform(-profile.max_shift, profile.max_shift)) * 0.5,
        zoom=float(rng.uniform(*profile.zoom)),
    )
    return ViewConditions(
        season=season,
        weather=_pick(WEATHERS, profile.weather, rng),
        time_of_day=_pick(TIMES_OF_DAY, profile.time_of_day, rng),
        snow_cover=snow_cover(climate, season, rng),
        camera=camera,
        noise_sigma=float(rng.uniform(*profile.noise_sigma)),
        jpeg_quality=int(rng.integers(profile.jpeg_quality[0], profile.jpeg_quality[1] + 1)),
        noise_seed=int(rng.integers(2**31)),
    )
