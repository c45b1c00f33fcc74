"""What distinguishes places: a palette and signage per country, an architecture per
continent, and a landmark per site. Country styles come from a hash of the country code,
so they are stable across seeds and runs without any hand-typed country table."""

from __future__ import annotations

import colorsys
import hashlib
from dataclasses import dataclass

import numpy as np

RGB = tuple[float, float, float]

SIGN_PATTERNS: tuple[str, ...] = ("lines", "columns", "blocks", "stripes")
FLAG_PATTERNS: tuple[str, ...] = ("horizontal", "vertical", "disc")
LANDMARK_KINDS: tuple[str, ...] = (
    "lattice_tower", "obelisk", "spire", "minaret", "clock_tower", "statue", "arch", "ring",
)
LANDMARK_LABELS: dict[str, str] = {
    "lattice_tower": "tower", "obelisk": "tower", "spire": "tower", "minaret": "tower",
    "clock_tower": "tower", "statue": "sculpture", "arch": "sculpture", "ring": "sculpture",
}


@dataclass(frozen=True)
class Architecture:
    """Continental building style: roof shape, window lattice, wall tones, skyline scale."""

    roof: str  # gable | pagoda | flat | parapet | dome | hip
    window_columns_per_unit: float  # window columns per scene unit of facade width
    window_rows_per_unit: float
    window_fill: tuple[float, float]  # fraction of each lattice cell that is glass (u, v)
    wall_saturation: tuple[float, float]
    wall_value: tuple[float, float]
    building_width: tuple[float, float]
    height_scale: float
    awnings: bool


ARCHITECTURE_BY_CONTINENT: dict[str, Architecture] = {
    "EU": Architecture("gable", 32, 30, (0.45, 0.55), (0.12, 0.35), (0.72, 0.92),
                       (0.07, 0.12), 1.0, False),
    "AS": Architecture("pagoda", 46, 48, (0.75, 0.35), (0.04, 0.22), (0.62, 0.88),
                       (0.06, 0.10), 1.3, True),
    "NA": Architecture("parapet", 40, 40, (0.78, 0.7), (0.04, 0.18), (0.55, 0.82),
                       (0.10, 0.17), 1.2, False),
    "SA": Architecture("flat", 22, 24, (0.4, 0.42), (0.45, 0.8), (0.72, 0.96),
                       (0.06, 0.10), 0.8, True),
    "AF": Architecture("dome", 16, 18, (0.35, 0.35), (0.18, 0.45), (0.62, 0.86),
                       (0.07, 0.12), 0.7, False),
    "OC": Architecture("hip", 14, 16, (0.72, 0.45), (0.08, 0.3), (0.76, 0.95),
                       (0.10, 0.16), 0.9, True),
}


@dataclass(frozen=True)
class CountryPalette:
    wall_hues: tuple[float, float, float]
    roof_rgb: RGB
    sign_rgb: RGB
    sign_ink_rgb: RGB
    sign_pattern: str
    flag_rgbs: tuple[RGB, RGB, RGB]
    flag_pattern: str


@dataclass(frozen=True)
class Landmark:
    """The one thing only this site has: shape, size, colours and place are site-seeded."""

    kind: str
    u: float  # centre in scene coordinates
    height: float
    width: float
    rgb: RGB
    accent_rgb: RGB
    bands: int


@dataclass(frozen=True)
class SiteStyle:
    palette: CountryPalette
    architecture: Architecture
    landmark: Landmark


def hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return (r, g, b)


def _unit_values(key: str, count: int) -> list[float]:
    """Stable pseudo-random numbers in [0, 1) from a key (Python's hash() is salted)."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    while len(digest) < 2 * count:
        digest += hashlib.sha256(digest).digest()
    return [int.from_bytes(digest[2 * k : 2 * k + 2], "big") / 65536.0 for k in range(count)]


def country_palette(country_code: str) -> CountryPalette:
    x = _unit_values(f"geoloc-demo-world/country/{country_code}", 16)
    base_hue = x[0]
    wall_hues = (base_hue, base_hue + 0.06 + 0.1 * x[1], base_hue - 0.05 - 0.1 * x[2])
    roof = hsv(x[3] * 0.12, 0.35 + 0.4 * x[4], 0.35 + 0.35 * x[5])
    sign_hue = x[6]
    sign = hsv(sign_hue, 0.6 + 0.4 * x[7], 0.55 + 0.4 * x[8])
    ink = hsv(sign_hue + 0.5, 0.2 * x[9], 0.05 if x[10] < 0.5 else 0.98)
    flags = tuple(hsv(x[11 + k], 0.75, 0.9 if k != 1 else 0.75) for k in range(3))
    return CountryPalette(
        wall_hues=wall_hues,
        roof_rgb=roof,
        sign_rgb=sign,
        sign_ink_rgb=ink,
        sign_pattern=SIGN_PATTERNS[int(x[14] * len(SIGN_PATTERNS))],
        flag_rgbs=flags,  # type: ignore[arg-type]
        flag_pattern=FLAG_PATTERNS[int(x[15] * len(FLAG_PATTERNS))],
    )


def draw_landmark(rng: np.random.Generator, u_range: tuple[float, float]) -> Landmark:
    kind = LANDMARK_KINDS[int(rng.integers(len(LANDMARK_KINDS)))]
    hue = float(rng.random())
    return Landmark(
        kind=kind,
        u=float(rng.uniform(*u_range)),
        height=float(rng.uniform(0.16, 0.36)),
        width=float(rng.uniform(0.035, 0.08)),
        rgb=hsv(hue, float(rng.uniform(0.3, 0.9)), float(rng.uniform(0.45, 0.95))),
        accent_rgb=hsv(hue + float(rng.uniform(0.25, 0.75)), 0.8, 0.9),
        bands=int(rng.integers(1, 5)),
    )


def site_style(continent: str, country_code: str, rng: np.random.Generator,
               landmark_u_range: tuple[float, float]) -> SiteStyle:
    return SiteStyle(
        palette=country_palette(country_code),
        architecture=ARCHITECTURE_BY_CONTINENT[continent],
        landmark=draw_landmark(rng, landmark_u_range),
    )
