"""Buildings: how many, how tall (urban density), in which style (continent), in which colours
(country). Roofs and windows share their building's label; only the colours differ."""

from __future__ import annotations

import numpy as np

from geoloc_core.demo_world.appearance import RGB, SiteStyle, hsv
from geoloc_core.demo_world.scene import SceneBuilder
from geoloc_core.demo_world.street import SCENE_LEFT, SCENE_RIGHT, Prop, Street

BACK_ROW_HEIGHTS: dict[str, tuple[float, float]] = {
    "rural": (0.05, 0.1), "town": (0.07, 0.16), "city": (0.1, 0.28), "metropolis": (0.16, 0.5),
}
GAP_PROBABILITY: dict[str, float] = {"rural": 0.6, "town": 0.25, "city": 0.1, "metropolis": 0.05}
SKYSCRAPER_HEIGHT = 0.3
HOUSE_HEIGHT = 0.12
FRONT_ROW_DEPTH = 0.15  # front row base, below the horizon
FRONT_ROW_CLEARANCE = 0.22  # the front rows leave this much either side of the vanishing point
FRONT_ROW_SCALE = 1.5


def _label_for(height: float, density: str) -> str:
    if height >= SKYSCRAPER_HEIGHT:
        return "skyscraper"
    if density in ("rural", "town") and height < HOUSE_HEIGHT:
        return "house"
    return "building"


def _shade(rgb: RGB, factor: float) -> RGB:
    return (rgb[0] * factor, rgb[1] * factor, rgb[2] * factor)


def _roof_parts(prop: Prop, roof: str, u0: float, u1: float, top: float, label: str,
                roof_mat: int, rng: np.random.Generator) -> None:
    width = u1 - u0
    middle = 0.5 * (u0 + u1)
    if roof == "gable":
        prop.add("polygon", (u0 - 0.006, top, u1 + 0.006, top, middle, top - 0.45 * width),
                 label, roof_mat)
    elif roof == "hip":
        prop.add("polygon", (u0 - 0.008, top, u1 + 0.008, top, u1 - 0.3 * width,
                             top - 0.22 * width, u0 + 0.3 * width, top - 0.22 * width),
                 label, roof_mat)
    elif roof == "pagoda":
        for level, inset in enumerate((0.0, 0.22)):
            base = top - level * 0.035
            lo, hi = u0 + inset * width, u1 - inset * width
            prop.add("polygon", (lo - 0.025, base, hi + 0.025, base, hi - 0.01, base - 0.018,
                                 lo + 0.01, base - 0.018), label, roof_mat)
    elif roof == "dome" and rng.random() < 0.4:
        prop.add("ellipse", (middle, top, 0.3 * width, 0.3 * width), label, roof_mat)
    elif roof in ("parapet", "dome"):
        prop.add("rect", (u0 - 0.003, top - 0.008, u1 + 0.003, top), label, roof_mat)
        if rng.random() < 0.4:
            box = 0.2 * width
            prop.add("rect", (middle, top - 0.025, middle + box, top - 0.008), label, roof_mat)
    else:
        prop.add("rect", (u0, top - 0.006, u1, top), label, roof_mat)


def building(builder: SceneBuilder, style: SiteStyle, rng: np.random.Generator, u0: float,
             u1: float, base: float, height: float, density: str) -> Prop:
    """One building standing on v = base, from u0 to u1."""
    arch, palette = style.architecture, style.palette
    label = _label_for(height, density)
    prop = Prop(base_v=base)
    top = base - height
    hue = palette.wall_hues[int(rng.integers(3))]
    if label == "skyscraper":
        glass = hsv(hue * 0.3 + 0.55, float(rng.uniform(0.1, 0.35)), float(rng.uniform(0.45, 0.7)))
        wall_mat = builder.material("glass", glass)
        prop.add("rect", (u0, top, u1, base), label, wall_mat)
        frame = builder.material("wall", _shade(glass, 0.6))
        prop.add("grid", (u0, top, u1, base, max(2, round((u1 - u0) * 60)),
                          max(4, round(height * 90)), 1.0, 0.25), label, frame)
        if rng.random() < 0.5:
            middle = 0.5 * (u0 + u1)
            prop.add("rect", (middle - 0.002, top - 0.06, middle + 0.002, top), label, frame)
        lights = builder.material("window", (0.2, 0.25, 0.3), float(rng.random()))
        prop.add("grid", (u0, top, u1, base, max(2, round((u1 - u0) * 30)),
                          max(4, round(height * 45)), 0.5, 0.3), label, lights)
        return prop
    wall = hsv(hue, float(rng.uniform(*arch.wall_saturation)), float(rng.uniform(*arch.wall_value)))
    roof_rgb = _shade(palette.roof_rgb, float(rng.uniform(0.8, 1.2)))
    roof_mat = builder.material("roof", roof_rgb if arch.roof != "parapet" else _shade(wall, 0.7))
    _roof_parts(prop, arch.roof, u0, u1, top, label, roof_mat, rng)
    prop.add("rect", (u0, top, u1, base), label, builder.material("wall", wall))
    window = builder.material("window", (0.18, 0.22, 0.28), float(rng.random()))
    columns = max(1, round((u1 - u0) * arch.window_columns_per_unit))
    rows = max(1, round(height * arch.window_rows_per_unit))
    fill_u, fill_v = arch.window_fill
    prop.add("grid", (u0, top, u1, base - 0.15 * height / rows, columns, rows, fill_u, fill_v),
             label, window)
    return prop


def shop_front(builder: SceneBuilder, style: SiteStyle, prop: Prop, u0: float, u1: float,
               base: float, height: float) -> None:
    """A sign (country colours and lettering pattern) and, by continent, an awning."""
    palette = style.palette
    sign_top, sign_bottom = base - 0.42 * height, base - 0.3 * height
    lo, hi = u0 + 0.08 * (u1 - u0), u1 - 0.08 * (u1 - u0)
    sign_bottom = max(sign_bottom, sign_top + 0.012)
    prop.add("rect", (lo, sign_top, hi, sign_bottom), "signboard",
             builder.material("sign", palette.sign_rgb))
    ink = builder.material("sign_ink", palette.sign_ink_rgb)
    prop.add("grid", (lo, sign_top, hi, sign_bottom, *sign_lettering(palette.sign_pattern)),
             "signboard", ink)
    if style.architecture.awnings:
        awning = builder.material("awning", _shade(palette.sign_rgb, 0.8))
        a_top = sign_bottom + 0.004
        prop.add("polygon", (lo, a_top, hi, a_top, hi + 0.01, a_top + 0.02, lo - 0.01,
                             a_top + 0.02), "awning", awning)


def sign_lettering(pattern: str) -> tuple[float, float, float, float]:
    """Grid parameters (columns, rows, fill_u, fill_v) that imitate a script's texture."""
    return {
        "lines": (1.0, 2.0, 0.8, 0.35),
        "columns": (6.0, 1.0, 0.35, 0.8),
        "blocks": (5.0, 2.0, 0.7, 0.7),
        "stripes": (1.0, 3.0, 1.0, 0.45),
    }[pattern]


def _row_spans(rng: np.random.Generator, lo: float, hi: float, widths: tuple[float, float],
               gap_probability: float) -> list[tuple[float, float]]:
    spans, u = [], lo
    while u < hi:
        width = float(rng.uniform(*widths))
        if rng.random() >= gap_probability:
            spans.append((u, min(u + width, hi)))
        u += width
    return spans


def back_row(builder: SceneBuilder, style: SiteStyle, street: Street, density: str,
             rng: np.random.Generator, blocked: tuple[float, float] | None) -> list[Prop]:
    """The skyline along the horizon; skipped where the sea is to be seen."""
    base = street.horizon + 0.012
    low, high = BACK_ROW_HEIGHTS[density]
    props = []
    for u0, u1 in _row_spans(rng, SCENE_LEFT, SCENE_RIGHT, style.architecture.building_width,
                             GAP_PROBABILITY[density]):
        if blocked is not None and u1 > blocked[0] and u0 < blocked[1]:
            continue
        height = float(rng.uniform(low, high)) * style.architecture.height_scale
        props.append(building(builder, style, rng, u0, u1, base, height, density))
    return props


def front_rows(builder: SceneBuilder, style: SiteStyle, street: Street, density: str,
               rng: np.random.Generator, sea_side: str | None) -> list[Prop]:
    """Taller, nearer buildings on both sides of the street, with shop fronts."""
    if density == "rural":
        return []
    base = street.horizon + FRONT_ROW_DEPTH * (1.0 - street.horizon)
    low, high = BACK_ROW_HEIGHTS[density]
    narrow, wide = style.architecture.building_width
    widths = (narrow * FRONT_ROW_SCALE, wide * FRONT_ROW_SCALE)
    sides = {"left": (SCENE_LEFT, street.vanish_u - FRONT_ROW_CLEARANCE),
             "right": (street.vanish_u + FRONT_ROW_CLEARANCE, SCENE_RIGHT)}
    props = []
    for side, (lo, hi) in sides.items():
        if side == sea_side:
            continue
        for u0, u1 in _row_spans(rng, lo, hi, widths, GAP_PROBABILITY[density]):
            height = float(rng.uniform(low, high)) * style.architecture.height_scale
            height *= FRONT_ROW_SCALE
            prop = building(builder, style, rng, u0, u1, base, height, density)
            if density != "town" or rng.random() < 0.5:
                shop_front(builder, style, prop, u0, u1, base, min(height, 0.12))
            props.append(prop)
    return props
