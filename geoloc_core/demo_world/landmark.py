"""Drawing a site's landmark: the feature that makes street-level (1 km) matches possible."""

from __future__ import annotations

import numpy as np

from geoloc_core.demo_world.appearance import LANDMARK_LABELS, Landmark
from geoloc_core.demo_world.scene import SceneBuilder
from geoloc_core.demo_world.street import Prop, Street

LANDMARK_SETBACK = 0.03  # below the horizon: in front of the skyline, behind the street


def _bands(prop: Prop, landmark: Landmark, label: str, accent: int, u0: float, u1: float,
           top: float, base: float) -> None:
    step = (base - top) / (landmark.bands + 1)
    for k in range(1, landmark.bands + 1):
        v = top + k * step
        prop.add("rect", (u0, v - 0.004, u1, v + 0.004), label, accent)


def landmark_prop(builder: SceneBuilder, landmark: Landmark, street: Street) -> Prop:
    base = street.horizon + LANDMARK_SETBACK * (1.0 - street.horizon)
    prop = Prop(base_v=base)
    label = LANDMARK_LABELS[landmark.kind]
    body = builder.material("landmark", landmark.rgb)
    accent = builder.material("landmark", landmark.accent_rgb)
    u, w, h = landmark.u, landmark.width, landmark.height
    top = base - h
    if landmark.kind == "lattice_tower":
        prop.add("polygon", (u - w, base, u + w, base, u + 0.1 * w, top, u - 0.1 * w, top),
                 label, body)
        prop.add("grid", (u - w, top, u + w, base, 3, 6, 0.5, 0.3), label, accent)
        prop.add("rect", (u - 0.002, top - 0.05, u + 0.002, top), label, body)
    elif landmark.kind == "obelisk":
        prop.add("polygon", (u - 0.5 * w, base, u + 0.5 * w, base, u + 0.3 * w, top + 0.04,
                             u - 0.3 * w, top + 0.04), label, body)
        prop.add("polygon", (u - 0.3 * w, top + 0.04, u + 0.3 * w, top + 0.04, u, top),
                 label, accent)
    elif landmark.kind == "spire":
        block_top = base - 0.4 * h
        prop.add("rect", (u - w, block_top, u + w, base), label, body)
        prop.add("polygon", (u - 0.6 * w, block_top, u + 0.6 * w, block_top, u, top),
                 label, accent)
        _bands(prop, landmark, label, accent, u - w, u + w, block_top, base)
    elif landmark.kind == "minaret":
        prop.add("rect", (u - 0.25 * w, top + 0.03, u + 0.25 * w, base), label, body)
        _bands(prop, landmark, label, accent, u - 0.45 * w, u + 0.45 * w, top + 0.03, base)
        prop.add("polygon", (u - 0.3 * w, top + 0.03, u + 0.3 * w, top + 0.03, u, top),
                 label, accent)
    elif landmark.kind == "clock_tower":
        prop.add("rect", (u - 0.5 * w, top, u + 0.5 * w, base), label, body)
        prop.add("polygon", (u - 0.6 * w, top, u + 0.6 * w, top, u, top - 0.6 * w),
                 label, accent)
        prop.add("ellipse", (u, top + 0.6 * w, 0.35 * w, 0.35 * w), "clock", accent)
    elif landmark.kind == "statue":
        plinth = base - 0.3 * h
        prop.add("rect", (u - 0.6 * w, plinth, u + 0.6 * w, base), label, accent)
        prop.add("ellipse", (u, plinth - 0.28 * h, 0.25 * w, 0.28 * h), label, body)
        prop.add("ellipse", (u, plinth - 0.62 * h, 0.14 * w, 0.08 * h), label, body)
        prop.add("polygon", (u + 0.1 * w, plinth - 0.45 * h, u + 0.2 * w, plinth - 0.5 * h,
                             u + 0.55 * w, top, u + 0.45 * w, top), label, body)
    elif landmark.kind == "arch":
        prop.add("rect", (u - 1.2 * w, top, u - 0.7 * w, base), label, body)
        prop.add("rect", (u + 0.7 * w, top, u + 1.2 * w, base), label, body)
        prop.add("rect", (u - 1.35 * w, top - 0.03, u + 1.35 * w, top + 0.02), label, accent)
    else:  # ring: a hoop of beads on a post
        radius = 0.35 * h
        centre = top + radius
        prop.add("rect", (u - 0.1 * w, centre, u + 0.1 * w, base), label, body)
        for angle in np.linspace(0.0, 2.0 * np.pi, 14, endpoint=False):
            prop.add("ellipse", (u + radius * 0.6 * np.cos(angle), centre + radius *
                                 np.sin(angle), 0.012, 0.012), label, accent)
    return prop
