"""Trees, palms and shrubs: the kind follows the climate band, the number falls as density
rises (sparse places are green, dense places are built up)."""

from __future__ import annotations

import numpy as np

from geoloc_core.demo_world.scene import SceneBuilder
from geoloc_core.demo_world.street import SCENE_LEFT, SCENE_RIGHT, Prop, Street

TREE_COUNTS: dict[str, tuple[int, int]] = {
    "rural": (12, 18), "town": (7, 11), "city": (3, 6), "metropolis": (1, 3),
}
# Probabilities of deciduous, conifer, palm, shrub, cypress per climate band.
TREE_MIX: dict[str, tuple[float, float, float, float, float]] = {
    "tropical": (0.25, 0.0, 0.7, 0.05, 0.0),
    "subtropical": (0.45, 0.0, 0.2, 0.1, 0.25),
    "arid": (0.0, 0.0, 0.3, 0.7, 0.0),
    "temperate": (0.75, 0.2, 0.0, 0.05, 0.0),
    "cold": (0.1, 0.85, 0.0, 0.05, 0.0),
}
TREE_KINDS = ("deciduous", "conifer", "palm", "shrub", "cypress")
FOLIAGE_RGB: dict[str, tuple[float, float, float]] = {
    "tropical": (0.1, 0.45, 0.12), "subtropical": (0.28, 0.45, 0.18), "arid": (0.45, 0.5, 0.3),
    "temperate": (0.2, 0.48, 0.16), "cold": (0.12, 0.32, 0.18),
}
TRUNK_RGB = (0.35, 0.25, 0.18)


def _tree(builder: SceneBuilder, prop: Prop, kind: str, u: float, base: float, size: float,
          climate: str, rng: np.random.Generator) -> None:
    leaf = FOLIAGE_RGB[climate]
    jitter = float(rng.uniform(0.85, 1.15))
    leaf = (leaf[0] * jitter, leaf[1] * jitter, leaf[2] * jitter)
    trunk = builder.material("trunk", TRUNK_RGB)
    if kind == "deciduous":
        crown = builder.material("foliage", leaf)
        prop.add("rect", (u - 0.05 * size, base - 0.5 * size, u + 0.05 * size, base), "tree", trunk)
        prop.add("ellipse", (u, base - 0.7 * size, 0.3 * size, 0.3 * size), "tree", crown)
    elif kind == "conifer":
        needles = builder.material("evergreen", (leaf[0] * 0.7, leaf[1] * 0.8, leaf[2] * 0.8))
        prop.add("rect", (u - 0.04 * size, base - 0.2 * size, u + 0.04 * size, base), "tree", trunk)
        for k in range(3):
            bottom = base - 0.15 * size - 0.25 * k * size
            half = 0.28 * size * (1.0 - 0.25 * k)
            prop.add("polygon", (u - half, bottom, u + half, bottom, u, bottom - 0.45 * size),
                     "tree", needles)
    elif kind == "palm":
        fronds = builder.material("evergreen", leaf)
        top = base - size
        lean = float(rng.uniform(-0.1, 0.1)) * size
        stem = (u - 0.03 * size, base, u + 0.03 * size, base,
                u + lean + 0.02 * size, top, u + lean - 0.02 * size, top)
        prop.add("polygon", stem, "palm", trunk)
        for angle in np.linspace(0.1 * np.pi, 0.9 * np.pi, 6):
            tip_u = u + lean + 0.45 * size * np.cos(angle)
            tip_v = top - 0.15 * size * np.sin(angle) + 0.22 * size * abs(np.cos(angle))
            prop.add("polygon", (u + lean, top - 0.06 * size, u + lean, top + 0.06 * size,
                                 tip_u, tip_v), "palm", fronds)
        prop.add("ellipse", (u + lean, top, 0.08 * size, 0.06 * size), "palm", fronds)
    elif kind == "shrub":
        bush = builder.material("evergreen", leaf)
        prop.add("ellipse", (u, base - 0.12 * size, 0.2 * size, 0.13 * size), "plant", bush)
    else:
        cypress = builder.material("evergreen", (leaf[0] * 0.8, leaf[1] * 0.9, leaf[2] * 0.8))
        prop.add("ellipse", (u, base - 0.5 * size, 0.09 * size, 0.5 * size), "tree", cypress)


def vegetation(builder: SceneBuilder, street: Street, climate: str, density: str,
               rng: np.random.Generator, min_base: float) -> list[Prop]:
    """Trees off the road (street trees on the kerb in towns), sized by perspective."""
    low, high = TREE_COUNTS[density]
    mix = np.array(TREE_MIX[climate])
    props = []
    for _ in range(int(rng.integers(low, high + 1))):
        base = float(rng.uniform(min_base, 1.1))
        kerb = street.kerb_half_width(base)
        if density != "rural" and rng.random() < 0.5:
            u = street.vanish_u + float(rng.choice([-1.0, 1.0])) * kerb * 0.92
        else:
            u = float(rng.uniform(SCENE_LEFT, SCENE_RIGHT))
            if abs(u - street.vanish_u) < kerb * 1.05:
                continue
        kind = TREE_KINDS[int(rng.choice(len(TREE_KINDS), p=mix / mix.sum()))]
        prop = Prop(base_v=base)
        size = street.scale(base) * float(rng.uniform(0.28, 0.5))
        _tree(builder, prop, kind, u, base, size, climate, rng)
        props.append(prop)
    return props
