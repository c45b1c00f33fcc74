"""Rendering one view of a site: rasterise the scene through the view's camera, colour it
for the view's season and light, then apply weather and the sensor. Only the camera reaches
the label map, so two views with the same camera share their labels exactly."""

from __future__ import annotations

import numpy as np

from geoloc_core.demo_world.colouring import base_colours
from geoloc_core.demo_world.conditions import ViewConditions
from geoloc_core.demo_world.effects import light_and_weather, rain_streaks, sensor
from geoloc_core.demo_world.raster import rasterize
from geoloc_core.demo_world.scene import Scene

MIN_IMAGE_SIZE = 16


def render_view(scene: Scene, conditions: ViewConditions,
                size: int) -> tuple[np.ndarray, np.ndarray]:
    """(size, size, 3) uint8 RGB image and (size, size) uint8 ADE20K label map."""
    if size < MIN_IMAGE_SIZE:
        raise ValueError(f"image size {size} is below the minimum {MIN_IMAGE_SIZE}")
    raster = rasterize(scene, size, conditions.camera)
    rgb, emissive = base_colours(scene, raster, conditions)
    is_sky = np.array([m.kind == "sky" for m in scene.materials])[raster.materials]
    rgb = light_and_weather(rgb, is_sky, emissive, raster.depth, conditions)
    if conditions.weather == "rain":
        rgb = rain_streaks(rgb, conditions)
    return sensor(np.clip(rgb, 0.0, 1.0), conditions), raster.labels
