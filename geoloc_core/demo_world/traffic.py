"""Cars on the road and people on the pavement: more of both where more people live. They
belong to the site's scene (not to a view) so a site's label layout stays fixed."""

from __future__ import annotations

import numpy as np

from geoloc_core.demo_world.appearance import hsv
from geoloc_core.demo_world.scene import SceneBuilder
from geoloc_core.demo_world.street import Prop, Street

CAR_COUNTS: dict[str, tuple[int, int]] = {
    "rural": (0, 1), "town": (1, 2), "city": (2, 4), "metropolis": (3, 5),
}
PERSON_COUNTS: dict[str, tuple[int, int]] = {
    "rural": (0, 1), "town": (1, 3), "city": (2, 5), "metropolis": (4, 7),
}
SKIN_TONES = ((0.95, 0.8, 0.68), (0.82, 0.62, 0.45), (0.6, 0.42, 0.3), (0.4, 0.27, 0.18))


def _car(builder: SceneBuilder, street: Street, rng: np.random.Generator) -> Prop:
    base = street.horizon + float(rng.uniform(0.08, 0.95)) * (1.0 - street.horizon)
    size = street.scale(base)
    u = street.vanish_u + float(rng.uniform(-0.55, 0.55)) * street.road_half_width(base)
    body = builder.material("car", hsv(float(rng.random()), float(rng.uniform(0.0, 0.8)),
                                       float(rng.uniform(0.25, 0.95))))
    glass = builder.material("glass", (0.15, 0.2, 0.25))
    tyre = builder.material("tyre", (0.05, 0.05, 0.05))
    half, height = 0.11 * size, 0.07 * size
    prop = Prop(base_v=base)
    prop.add("rect", (u - half, base - height, u + half, base - 0.012 * size), "car", body)
    prop.add("polygon", (u - 0.75 * half, base - height, u + 0.75 * half, base - height,
                         u + 0.55 * half, base - 1.7 * height, u - 0.55 * half,
                         base - 1.7 * height), "car", body)
    prop.add("rect", (u - 0.55 * half, base - 1.55 * height, u + 0.55 * half,
                      base - 1.05 * height), "car", glass)
    for wheel in (-0.65, 0.65):
        prop.add("ellipse", (u + wheel * half, base - 0.015 * size, 0.025 * size,
                             0.02 * size), "car", tyre)
    return prop


def _person(builder: SceneBuilder, street: Street, rng: np.random.Generator) -> Prop:
    base = street.horizon + float(rng.uniform(0.15, 0.95)) * (1.0 - street.horizon)
    size = street.scale(base)
    road, kerb = street.road_half_width(base), street.kerb_half_width(base)
    side = float(rng.choice([-1.0, 1.0]))
    u = street.vanish_u + side * float(rng.uniform(road + 0.2 * (kerb - road), kerb))
    clothes = builder.material("person", hsv(float(rng.random()), float(rng.uniform(0.2, 0.8)),
                                             float(rng.uniform(0.2, 0.8))))
    skin = builder.material("skin", SKIN_TONES[int(rng.integers(len(SKIN_TONES)))])
    height = 0.2 * size * float(rng.uniform(0.85, 1.1))
    prop = Prop(base_v=base)
    prop.add("rect", (u - 0.035 * size, base - 0.82 * height, u + 0.035 * size, base),
             "person", clothes)
    prop.add("ellipse", (u, base - 0.9 * height, 0.025 * size, 0.1 * height), "person", skin)
    return prop


def traffic(builder: SceneBuilder, street: Street, density: str,
            rng: np.random.Generator) -> list[Prop]:
    cars = int(rng.integers(CAR_COUNTS[density][0], CAR_COUNTS[density][1] + 1))
    people = int(rng.integers(PERSON_COUNTS[density][0], PERSON_COUNTS[density][1] + 1))
    props = [_car(builder, street, rng) for _ in range(cars)]
    props += [_person(builder, street, rng) for _ in range(people)]
    return props
