"""Street furniture: streetlights in towns, utility poles and fences in the countryside,
billboards and traffic lights in cities, and a flag in the country's colours."""

from __future__ import annotations

import numpy as np

from geoloc_core.demo_world.appearance import CountryPalette
from geoloc_core.demo_world.buildings import sign_lettering
from geoloc_core.demo_world.scene import SceneBuilder
from geoloc_core.demo_world.street import SCENE_LEFT, SCENE_RIGHT, Prop, Street

METAL_RGB = (0.32, 0.33, 0.35)
WOOD_RGB = (0.42, 0.32, 0.22)
LAMP_RGB = (0.85, 0.85, 0.78)
STREETLIGHT_POSITIONS = (0.22, 0.45, 0.8)  # fractions of the way from horizon to bottom


def _streetlights(builder: SceneBuilder, street: Street) -> list[Prop]:
    metal, lamp = builder.material("metal", METAL_RGB), builder.material("lamp", LAMP_RGB)
    props = []
    for fraction in STREETLIGHT_POSITIONS:
        base = street.horizon + fraction * (1.0 - street.horizon)
        size = street.scale(base)
        for side in (-1.0, 1.0):
            u = street.vanish_u + side * street.kerb_half_width(base) * 0.97
            top = base - 0.45 * size
            arm_end = u - side * 0.1 * size
            prop = Prop(base_v=base)
            prop.add("rect", (u - 0.006 * size, top, u + 0.006 * size, base), "streetlight", metal)
            prop.add("rect", (min(u, arm_end), top, max(u, arm_end), top + 0.01 * size),
                     "streetlight", metal)
            prop.add("ellipse", (arm_end, top + 0.012 * size, 0.025 * size, 0.01 * size),
                     "streetlight", lamp)
            props.append(prop)
    return props


def _utility_poles(builder: SceneBuilder, street: Street, rng: np.random.Generator) -> list[Prop]:
    wood = builder.material("metal", WOOD_RGB)
    side = float(rng.choice([-1.0, 1.0]))
    props = []
    for fraction in (0.12, 0.3, 0.6, 1.0):
        base = street.horizon + fraction * (1.0 - street.horizon)
        size = street.scale(base)
        u = street.vanish_u + side * (street.kerb_half_width(base) + 0.08 * size)
        top = base - 0.6 * size
        prop = Prop(base_v=base)
        prop.add("rect", (u - 0.007 * size, top, u + 0.007 * size, base), "pole", wood)
        prop.add("rect", (u - 0.06 * size, top + 0.03 * size, u + 0.06 * size,
                          top + 0.04 * size), "pole", wood)
        props.append(prop)
    return props


def _fence(builder: SceneBuilder, street: Street, rng: np.random.Generator) -> Prop:
    wood = builder.material("metal", WOOD_RGB)
    base = street.horizon + float(rng.uniform(0.15, 0.35)) * (1.0 - street.horizon)
    size = street.scale(base)
    left = rng.random() < 0.5
    kerb = street.kerb_half_width(base) + 0.02
    u0, u1 = (SCENE_LEFT, street.vanish_u - kerb) if left else (street.vanish_u + kerb, SCENE_RIGHT)
    prop = Prop(base_v=base)
    height = 0.07 * size
    for rail in (0.35, 0.75):
        v = base - rail * height
        prop.add("rect", (u0, v - 0.006 * size, u1, v + 0.006 * size), "fence", wood)
    posts = max(2, round((u1 - u0) / (0.08 * size)))
    prop.add("grid", (u0, base - height, u1, base, posts, 1, 0.2, 1.0), "fence", wood)
    return prop


def _billboard(builder: SceneBuilder, street: Street, palette: CountryPalette,
               rng: np.random.Generator) -> Prop:
    base = street.horizon + float(rng.uniform(0.1, 0.3)) * (1.0 - street.horizon)
    size = street.scale(base)
    side = float(rng.choice([-1.0, 1.0]))
    u = street.vanish_u + side * (street.kerb_half_width(base) + 0.25 * size)
    top, bottom = base - 0.55 * size, base - 0.33 * size
    metal = builder.material("metal", METAL_RGB)
    prop = Prop(base_v=base)
    for post in (-0.15, 0.15):
        prop.add("rect", (u + (post - 0.01) * size, bottom, u + (post + 0.01) * size, base),
                 "pole", metal)
    board = (u - 0.3 * size, top, u + 0.3 * size, bottom)
    prop.add("rect", board, "signboard", builder.material("sign", palette.sign_rgb))
    prop.add("grid", (*board, *sign_lettering(palette.sign_pattern)), "signboard",
             builder.material("sign_ink", palette.sign_ink_rgb))
    return prop


def _traffic_light(builder: SceneBuilder, street: Street, rng: np.random.Generator) -> Prop:
    base = street.horizon + float(rng.uniform(0.3, 0.6)) * (1.0 - street.horizon)
    size = street.scale(base)
    u = street.vanish_u + float(rng.choice([-1.0, 1.0])) * street.kerb_half_width(base) * 0.9
    metal = builder.material("metal", (0.15, 0.15, 0.15))
    prop = Prop(base_v=base)
    prop.add("rect", (u - 0.005 * size, base - 0.3 * size, u + 0.005 * size, base), "pole", metal)
    prop.add("rect", (u - 0.02 * size, base - 0.4 * size, u + 0.02 * size, base - 0.3 * size),
             "traffic light", metal)
    prop.add("grid", (u - 0.02 * size, base - 0.4 * size, u + 0.02 * size, base - 0.3 * size,
                      1, 3, 0.6, 0.6), "traffic light", builder.material("lamp", (0.9, 0.3, 0.2)))
    return prop


def _flag(builder: SceneBuilder, street: Street, palette: CountryPalette,
          rng: np.random.Generator) -> Prop:
    base = street.horizon + float(rng.uniform(0.05, 0.25)) * (1.0 - street.horizon)
    size = street.scale(base)
    u = float(rng.uniform(0.1, 0.9))
    top = base - 0.9 * size
    prop = Prop(base_v=base)
    prop.add("rect", (u - 0.005 * size, top, u + 0.005 * size, base), "pole",
             builder.material("metal", METAL_RGB))
    u0, u1, v0, v1 = u + 0.005 * size, u + 0.2 * size, top, top + 0.12 * size
    colours = [builder.material("flag", c) for c in palette.flag_rgbs]
    if palette.flag_pattern == "disc":
        prop.add("rect", (u0, v0, u1, v1), "flag", colours[0])
        prop.add("ellipse", (0.5 * (u0 + u1), 0.5 * (v0 + v1), 0.03 * size, 0.03 * size),
                 "flag", colours[2])
        return prop
    for k, colour in enumerate(colours):
        if palette.flag_pattern == "horizontal":
            band = (u0, v0 + k * (v1 - v0) / 3, u1, v0 + (k + 1) * (v1 - v0) / 3)
        else:
            band = (u0 + k * (u1 - u0) / 3, v0, u0 + (k + 1) * (u1 - u0) / 3, v1)
        prop.add("rect", band, "flag", colour)
    return prop


def furniture(builder: SceneBuilder, street: Street, palette: CountryPalette, density: str,
              rng: np.random.Generator) -> list[Prop]:
    props: list[Prop] = []
    if density != "rural":
        props += _streetlights(builder, street)
    if density in ("rural", "town"):
        props += _utility_poles(builder, street, rng)
    if density == "rural" and rng.random() < 0.6:
        props.append(_fence(builder, street, rng))
    if density in ("city", "metropolis"):
        if rng.random() < 0.6:
            props.append(_billboard(builder, street, palette, rng))
        if rng.random() < 0.6:
            props.append(_traffic_light(builder, street, rng))
    if rng.random() < 0.5:
        props.append(_flag(builder, street, palette, rng))
    return props
