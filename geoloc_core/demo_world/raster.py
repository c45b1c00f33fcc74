"""Rasterising a scene through a camera into per-pixel label, material and depth maps.

The camera is a shift plus a zoom, so scene u depends only on the pixel column and v only on
the row; each shape is tested only inside its bounding box. All tests are elementwise
comparisons, so the result does not depend on threads or on the order of evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geoloc_core.ade20k import class_id
from geoloc_core.demo_world.scene import Element, Scene

GROUND_FAR_DEPTH = 0.9  # depth of the ground at the horizon; sky and mountains sit beyond


@dataclass(frozen=True)
class Camera:
    """What part of the scene a view sees: zoom >= 1 crops in, shifts move the crop."""

    shift_u: float = 0.0
    shift_v: float = 0.0
    zoom: float = 1.0


@dataclass(frozen=True)
class Raster:
    labels: np.ndarray  # (S, S) uint8 ADE20K ids
    materials: np.ndarray  # (S, S) int32 index into scene.materials
    depth: np.ndarray  # (S, S) float64, 0 near .. 1 far
    u: np.ndarray  # (S,) scene u of each column
    v: np.ndarray  # (S,) scene v of each row


def pixel_coordinates(size: int, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    centres = (np.arange(size, dtype=np.float64) + 0.5) / size
    u = 0.5 + camera.shift_u + (centres - 0.5) / camera.zoom
    v = 0.5 + camera.shift_v + (centres - 0.5) / camera.zoom
    return u, v


def _bounds(element: Element, pixel: float) -> tuple[float, float, float, float]:
    p = element.params
    if element.shape in ("rect", "grid"):
        u0, v0, u1, v1 = p[0], p[1], p[2], p[3]
        if element.shape == "rect":
            u0, u1 = _at_least_one_pixel(u0, u1, pixel)
            v0, v1 = _at_least_one_pixel(v0, v1, pixel)
        return u0, v0, u1, v1
    if element.shape == "ellipse":
        return p[0] - p[2], p[1] - p[3], p[0] + p[2], p[1] + p[3]
    if element.shape == "polygon":
        us, vs = p[0::2], p[1::2]
        return min(us), min(vs), max(us), max(vs)
    v_base, v_cut, amplitude = p[0], p[1], p[2]
    return -np.inf, v_base - amplitude, np.inf, v_cut


def _at_least_one_pixel(lo: float, hi: float, pixel: float) -> tuple[float, float]:
    if hi - lo >= pixel:
        return lo, hi
    middle = 0.5 * (lo + hi)
    return middle - 0.5 * pixel, middle + 0.5 * pixel


def _polygon_mask(params: tuple[float, ...], u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside a convex polygon of either winding: on one side of every edge."""
    us, vs = params[0::2], params[1::2]
    positive = np.ones((v.size, u.size), dtype=bool)
    negative = np.ones((v.size, u.size), dtype=bool)
    for k in range(len(us)):
        ua, va, ub, vb = us[k], vs[k], us[(k + 1) % len(us)], vs[(k + 1) % len(us)]
        cross = (ub - ua) * (v - va) - (vb - va) * (u - ua)
        positive &= cross >= 0
        negative &= cross <= 0
    return positive | negative


def _ridge_mask(params: tuple[float, ...], u: np.ndarray, v: np.ndarray) -> np.ndarray:
    v_base, v_cut, amplitude = params[0], params[1], params[2]
    crest = np.zeros_like(u)
    weights = 0.0
    for frequency, phase, weight in zip(params[3::3], params[4::3], params[5::3], strict=True):
        crest = crest + weight * (0.5 + 0.5 * np.sin(2.0 * np.pi * frequency * u + phase))
        weights += weight
    crest_v = v_base - amplitude * crest / max(weights, 1e-9)
    return (v >= crest_v) & (v < v_cut)


def _grid_mask(params: tuple[float, ...], u: np.ndarray, v: np.ndarray) -> np.ndarray:
    u0, v0, u1, v1, columns, rows, fill_u, fill_v = params
    cell_u = (u - u0) / max(u1 - u0, 1e-9) * columns
    cell_v = (v - v0) / max(v1 - v0, 1e-9) * rows
    frac_u = np.abs(cell_u - np.floor(cell_u) - 0.5)
    frac_v = np.abs(cell_v - np.floor(cell_v) - 0.5)
    inside = (u >= u0) & (u < u1) & (v >= v0) & (v < v1)
    return inside & (frac_u < 0.5 * fill_u) & (frac_v < 0.5 * fill_v)


def element_mask(element: Element, u: np.ndarray, v: np.ndarray, pixel: float) -> np.ndarray:
    """Boolean mask (rows, cols) of the element; u holds column centres, v row centres."""
    uu, vv = u[np.newaxis, :], v[:, np.newaxis]
    if element.shape == "rect":
        u0, v0, u1, v1 = _bounds(element, pixel)
        return (uu >= u0) & (uu < u1) & (vv >= v0) & (vv < v1)
    if element.shape == "ellipse":
        cu, cv, ru, rv = element.params
        return ((uu - cu) / ru) ** 2 + ((vv - cv) / rv) ** 2 <= 1.0
    if element.shape == "polygon":
        return _polygon_mask(element.params, uu, vv)
    if element.shape == "ridge":
        return _ridge_mask(element.params, uu, vv)
    return _grid_mask(element.params, uu, vv)


def _index_window(lo: float, hi: float, first_centre: float, step: float,
                  size: int) -> tuple[int, int]:
    """Pixel indices whose centres may fall in [lo, hi], padded by one: the window only has to
    contain the shape, the exact test happens per pixel."""
    start = (lo - first_centre) / step
    stop = (hi - first_centre) / step
    first = 0 if start <= 1.0 else min(int(start) - 1, size)
    last = size if stop >= size - 2 else max(int(stop) + 2, 0)
    return first, last


def rasterize(scene: Scene, size: int, camera: Camera) -> Raster:
    """Paints elements in order; a label depends only on the scene and the camera."""
    u, v = pixel_coordinates(size, camera)
    pixel = 1.0 / (size * camera.zoom)
    labels = np.full((size, size), class_id("sky"), dtype=np.uint8)
    materials = np.zeros((size, size), dtype=np.int32)
    depth = np.ones((size, size), dtype=np.float64)
    below_horizon = np.clip((v - scene.horizon) / (1.0 - scene.horizon), 0.0, 1.0)
    ground_depth = np.repeat((GROUND_FAR_DEPTH * (1.0 - below_horizon))[:, None], size, axis=1)
    for element in scene.elements:
        u0, v0, u1, v1 = _bounds(element, pixel)
        c0, c1 = _index_window(u0, u1, float(u[0]), pixel, size)
        r0, r1 = _index_window(v0, v1, float(v[0]), pixel, size)
        if c0 >= c1 or r0 >= r1:
            continue
        mask = element_mask(element, u[c0:c1], v[r0:r1], pixel)
        window = (slice(r0, r1), slice(c0, c1))
        labels[window][mask] = element.label
        materials[window][mask] = element.material
        if element.depth < 0:
            depth[window][mask] = ground_depth[window][mask]
        else:
            depth[window][mask] = element.depth
    return Raster(labels=labels, materials=materials, depth=depth, u=u, v=v)
