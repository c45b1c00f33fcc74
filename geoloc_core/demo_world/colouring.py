"""Surface colours under a view's season and time of day: foliage turning, grass drying, snow
on the ground and roofs, lit windows and lamps at night, the sky's gradient.

ADE20K-150 has no snow class, so snow only recolours pixels: a snowy roof keeps the label
building and a snowy lawn keeps grass.
"""

from __future__ import annotations

import numpy as np

from geoloc_core.demo_world.conditions import ViewConditions
from geoloc_core.demo_world.raster import Raster
from geoloc_core.demo_world.scene import Scene

RGB = tuple[float, float, float]
SNOW_RGB = np.array([0.93, 0.94, 0.97])
WINDOW_GLOW_RGB = (1.0, 0.82, 0.48)
LAMP_GLOW_RGB = (1.0, 0.93, 0.7)
# Share of windows lit by time of day (a window material lights up if its draw is below).
LIT_SHARE = {"day": 0.0, "dusk": 0.3, "night": 0.6}
SNOW_CAPABLE = {"grass", "earth", "sand", "sidewalk", "roof", "foliage", "evergreen", "hill"}
SKY_ZENITH = {"day": (0.28, 0.5, 0.86), "dusk": (0.25, 0.24, 0.5), "night": (0.04, 0.06, 0.16)}
SKY_HORIZON = {"day": (0.72, 0.82, 0.94), "dusk": (0.96, 0.56, 0.32), "night": (0.16, 0.16, 0.28)}
CLOUD_GREY = {"day": 0.74, "dusk": 0.5, "night": 0.18}


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t)


def seasonal_colour(kind: str, rgb: RGB, season: str, climate: str) -> RGB:
    """Vegetation follows the season; the tropics only dry a little in their dry season."""
    tropical = climate in ("tropical", "arid")
    if kind == "foliage":
        if tropical:
            return _mix(rgb, (0.5, 0.5, 0.25), 0.2) if season in ("autumn", "winter") else rgb
        targets = {"spring": ((0.55, 0.78, 0.32), 0.45), "autumn": ((0.82, 0.45, 0.12), 0.75),
                   "winter": ((0.42, 0.36, 0.3), 0.85)}
    elif kind in ("grass", "hill"):
        if tropical:
            return _mix(rgb, (0.62, 0.56, 0.3), 0.25) if season == "winter" else rgb
        targets = {"spring": ((0.45, 0.7, 0.3), 0.3), "autumn": ((0.6, 0.55, 0.3), 0.4),
                   "winter": ((0.5, 0.46, 0.36), 0.5)}
    elif kind == "evergreen" and season == "winter" and not tropical:
        return _mix(rgb, (0.1, 0.2, 0.15), 0.3)
    else:
        return rgb
    if season not in targets:
        return rgb
    target, amount = targets[season]
    return _mix(rgb, target, amount)


def material_table(scene: Scene, conditions: ViewConditions) -> tuple[np.ndarray, np.ndarray]:
    """(M, 3) colour per material and (M,) whether it emits light (so darkness spares it)."""
    colours = np.zeros((len(scene.materials), 3))
    emissive = np.zeros(len(scene.materials), dtype=bool)
    lit_share = LIT_SHARE[conditions.time_of_day]
    for index, material in enumerate(scene.materials):
        colour = seasonal_colour(material.kind, material.rgb, conditions.season, scene.climate)
        if material.kind == "window" and material.variant < lit_share:
            colour, emissive[index] = WINDOW_GLOW_RGB, True
        elif material.kind == "lamp" and conditions.time_of_day != "day":
            colour, emissive[index] = LAMP_GLOW_RGB, True
        colours[index] = colour
    return colours, emissive


def hash_noise(u: np.ndarray, v: np.ndarray, cells_per_unit: float) -> np.ndarray:
    """Value noise fixed to scene coordinates (integer hash, identical on every machine), so
    snow patches stay put when the camera moves."""
    qu = np.floor((u + 8.0) * cells_per_unit).astype(np.uint64)
    qv = np.floor((v + 8.0) * cells_per_unit).astype(np.uint64)
    h = (qu[np.newaxis, :] * np.uint64(0x9E3779B1)) ^ (qv[:, np.newaxis] * np.uint64(0x85EBCA77))
    h ^= h >> np.uint64(15)
    h *= np.uint64(0x2C1B3C6D)
    h ^= h >> np.uint64(12)
    return (h & np.uint64(0xFFFFFF)).astype(np.float64) / float(1 << 24)


def sky_colours(conditions: ViewConditions) -> tuple[np.ndarray, np.ndarray]:
    zenith = np.array(SKY_ZENITH[conditions.time_of_day])
    horizon = np.array(SKY_HORIZON[conditions.time_of_day])
    if conditions.weather != "clear":
        grey = np.full(3, CLOUD_GREY[conditions.time_of_day])
        zenith, horizon = 0.2 * zenith + 0.8 * grey, 0.2 * horizon + 0.8 * grey
    return zenith, horizon


def base_colours(scene: Scene, raster: Raster,
                 conditions: ViewConditions) -> tuple[np.ndarray, np.ndarray]:
    """(S, S, 3) surface colours and an (S, S) mask of light-emitting pixels."""
    colours, emissive = material_table(scene, conditions)
    rgb = colours[raster.materials]
    kinds = np.array([m.kind for m in scene.materials])
    pixel_kinds = kinds[raster.materials]
    zenith, horizon = sky_colours(conditions)
    height = np.clip((scene.horizon - raster.v) / scene.horizon, 0.0, 1.0)[:, None, None]
    sky = zenith * height + horizon * (1.0 - height)
    is_sky = pixel_kinds == "sky"
    rgb = np.where(is_sky[..., None], np.broadcast_to(sky, rgb.shape), rgb)
    if conditions.snow_cover > 0.0:
        noise = 0.6 * hash_noise(raster.u, raster.v, 12.0) + 0.4 * hash_noise(
            raster.u, raster.v, 60.0
        )
        capable = np.isin(pixel_kinds, sorted(SNOW_CAPABLE))
        on_roof = (pixel_kinds == "roof") & (conditions.snow_cover > 0.25)
        snowy = capable & ((noise < conditions.snow_cover) | on_roof)
        rgb = np.where(snowy[..., None], SNOW_RGB, rgb)
    return rgb, emissive[raster.materials]
