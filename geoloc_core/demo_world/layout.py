"""Composing one site's scene from its geography: sky and background (mountains, hills, sea),
ground and street, skyline, landmark, then everything standing on the ground, far to near."""

from __future__ import annotations

import numpy as np

from geoloc_core.demo_world.appearance import site_style
from geoloc_core.demo_world.buildings import back_row, front_rows
from geoloc_core.demo_world.furniture import furniture
from geoloc_core.demo_world.landmark import landmark_prop
from geoloc_core.demo_world.scene import Scene, SceneBuilder
from geoloc_core.demo_world.sites import Site
from geoloc_core.demo_world.street import (
    SCENE_LEFT,
    SCENE_RIGHT,
    STREET_BOTTOM,
    Street,
    paint_props,
)
from geoloc_core.demo_world.traffic import traffic
from geoloc_core.demo_world.vegetation import vegetation

SCENE_STREAM = 3
GROUND_DEPTH = -1.0  # tells the renderer to derive depth from the distance below the horizon
ROAD_HALF_WIDTH = {"rural": 0.28, "town": 0.4, "city": 0.5, "metropolis": 0.55}
SKY_RGB = (0.45, 0.65, 0.92)
SEA_RGB = (0.08, 0.33, 0.52)
BEACH_RGB = (0.9, 0.83, 0.64)
GROUND_BY_CLIMATE: dict[str, tuple[str, tuple[float, float, float]]] = {
    "tropical": ("grass", (0.3, 0.52, 0.18)),
    "subtropical": ("earth", (0.6, 0.5, 0.36)),
    "arid": ("sand", (0.86, 0.73, 0.5)),
    "temperate": ("grass", (0.38, 0.58, 0.26)),
    "cold": ("grass", (0.4, 0.47, 0.32)),
}
MOUNTAIN_CHANCE = {"cold": 1.0, "temperate": 0.3, "arid": 0.4, "subtropical": 0.3, "tropical": 0.3}
PAVED_DENSITIES = ("city", "metropolis")  # cities are paved wall to wall
PAVING_RGB = (0.6, 0.59, 0.56)
SEA_CLEARANCE = 0.12  # the sea starts this far from the vanishing point, on one side


def _ridge(builder: SceneBuilder, street: Street, rng: np.random.Generator, label: str,
           kind: str, rgb: tuple[float, float, float], amplitude: float, snowcap: bool) -> None:
    harmonics: list[float] = []
    for _ in range(3):
        harmonics += [float(rng.uniform(0.8, 4.0)), float(rng.uniform(0, 2 * np.pi)),
                      float(rng.uniform(0.3, 1.0))]
    v_base = street.horizon + 0.002
    shape = (v_base, v_base, amplitude, *harmonics)
    builder.add("ridge", shape, label, builder.material(kind, rgb), 0.97)
    if snowcap:
        cap = (v_base, v_base - 0.55 * amplitude, amplitude, *harmonics)
        builder.add("ridge", cap, label, builder.material("snowcap", (0.93, 0.95, 0.98)), 0.97)


def _background(builder: SceneBuilder, site: Site, street: Street,
                rng: np.random.Generator) -> tuple[float, float] | None:
    """Mountains or hills on the horizon; the sea on one side for coastal sites. Returns the
    u span the sea occupies, which buildings must leave open."""
    if rng.random() < MOUNTAIN_CHANCE[site.climate]:
        if site.climate in ("cold", "temperate"):
            _ridge(builder, street, rng, "mountain", "mountain", (0.42, 0.44, 0.5),
                   float(rng.uniform(0.12, 0.25)), snowcap=True)
        elif site.climate == "arid":
            _ridge(builder, street, rng, "mountain", "mountain", (0.66, 0.46, 0.33),
                   float(rng.uniform(0.08, 0.2)), snowcap=False)
        else:
            _ridge(builder, street, rng, "hill", "hill", (0.3, 0.45, 0.28),
                   float(rng.uniform(0.05, 0.1)), snowcap=False)
    kind, rgb = GROUND_BY_CLIMATE[site.climate]
    if site.density in PAVED_DENSITIES:
        kind, rgb = "sidewalk", PAVING_RGB
    builder.add("rect", (SCENE_LEFT - 1, street.horizon, SCENE_RIGHT + 1, STREET_BOTTOM + 1),
                kind, builder.material(kind, rgb), GROUND_DEPTH)
    if not site.coastal:
        return None
    if rng.random() < 0.5:
        span = (SCENE_LEFT - 1, street.vanish_u - SEA_CLEARANCE)
    else:
        span = (street.vanish_u + SEA_CLEARANCE, SCENE_RIGHT + 1)
    sea_bottom = street.horizon + float(rng.uniform(0.05, 0.12)) * (1.0 - street.horizon)
    builder.add("rect", (span[0], street.horizon, span[1], sea_bottom), "sea",
                builder.material("sea", SEA_RGB), GROUND_DEPTH)
    if site.density != "metropolis":
        beach_bottom = sea_bottom + 0.03 * (1.0 - street.horizon)
        builder.add("rect", (span[0], sea_bottom, span[1], beach_bottom), "sand",
                    builder.material("sand", BEACH_RGB), GROUND_DEPTH)
    return span


def _street(builder: SceneBuilder, site: Site, street: Street, rng: np.random.Generator) -> None:
    vp, h, bottom = street.vanish_u, street.horizon, STREET_BOTTOM
    road, kerb = street.road_half_width(bottom), street.kerb_half_width(bottom)
    if site.density != "rural":
        grey = float(rng.uniform(0.55, 0.72))
        builder.add("polygon", (vp - 0.003, h, vp + 0.003, h, vp + kerb, bottom, vp - kerb, bottom),
                    "sidewalk", builder.material("sidewalk", (grey, grey * 0.98, grey * 0.95)),
                    GROUND_DEPTH)
    dirt = site.density == "rural" and (site.climate == "arid" or rng.random() < 0.4)
    label, kind = ("dirt track", "earth") if dirt else ("road", "road")
    surface = (0.55, 0.45, 0.33) if dirt else (0.28, 0.28, 0.3)
    builder.add("polygon", (vp - 0.002, h, vp + 0.002, h, vp + road, bottom, vp - road, bottom),
                label, builder.material(kind, surface), GROUND_DEPTH)
    if dirt:
        return
    paint = builder.material("road_mark", (0.9, 0.88, 0.75))
    for fraction in (0.06, 0.16, 0.32, 0.56, 0.9):
        top = h + fraction * (1.0 - h)
        size = street.scale(top)
        builder.add("rect", (vp - 0.006 * size, top, vp + 0.006 * size, top + 0.08 * size),
                    label, paint, GROUND_DEPTH)


def build_scene(site: Site, seed: int) -> Scene:
    """The fixed layout of a site; every view of it is this scene under other conditions."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, SCENE_STREAM, site.site_id]))
    horizon = float(rng.uniform(0.5, 0.6))
    street = Street(
        horizon=horizon,
        vanish_u=float(rng.uniform(0.4, 0.6)),
        half_width_bottom=ROAD_HALF_WIDTH[site.density] * float(rng.uniform(0.9, 1.1)),
        kerb_ratio=1.25 if site.density == "rural" else 1.7,
    )
    if site.density == "rural":
        landmark_span = (0.1, 0.9)
    else:
        landmark_span = (street.vanish_u - 0.18, street.vanish_u + 0.18)
    style = site_style(site.continent, site.country_code, rng, landmark_span)
    builder = SceneBuilder(horizon)
    builder.add("rect", (SCENE_LEFT - 1, -1.0, SCENE_RIGHT + 1, horizon), "sky",
                builder.material("sky", SKY_RGB), 1.0)
    sea_span = _background(builder, site, street, rng)
    _street(builder, site, street, rng)
    paint_props(builder, street, back_row(builder, style, street, site.density, rng, sea_span))
    sea_side = None if sea_span is None else ("left" if sea_span[0] < street.vanish_u else "right")
    min_tree_base = horizon + (0.2 if site.coastal else 0.04) * (1.0 - horizon)
    props = [landmark_prop(builder, style.landmark, street)]
    props += front_rows(builder, style, street, site.density, rng, sea_side)
    props += vegetation(builder, street, site.climate, site.density, rng, min_tree_base)
    props += furniture(builder, street, style.palette, site.density, rng)
    props += traffic(builder, street, site.density, rng)
    paint_props(builder, street, props)
    return builder.build(site.site_id, site.climate)
