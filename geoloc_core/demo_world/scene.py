"""The resolution-free description of one site's scene: shapes in scene coordinates, each with
an ADE20K label and a material. Geometry and labels live here; colours under a given season,
weather or time of day are decided later, so conditions can never move a label."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from geoloc_core.ade20k import class_id

# Material kinds the colour pass knows how to light, weather and snow over.
MATERIAL_KINDS: tuple[str, ...] = (
    "sky", "mountain", "snowcap", "hill", "sea", "sand", "grass", "earth", "road", "road_mark",
    "sidewalk", "wall", "roof", "window", "glass", "foliage", "evergreen", "trunk", "metal",
    "lamp", "sign", "sign_ink", "awning", "car", "tyre", "person", "skin", "landmark", "flag",
)
SHAPES: tuple[str, ...] = ("rect", "ellipse", "polygon", "ridge", "grid")


class Material(NamedTuple):
    """Named tuples rather than dataclasses: a world holds ~100k of these and ships them to
    every render worker, and tuples pickle several times faster."""

    kind: str
    rgb: tuple[float, float, float]  # base colour in [0, 1] under clear summer daylight
    variant: float = 0.0  # a per-material draw in [0, 1), e.g. whether its windows light up


class Element(NamedTuple):
    """One shape. Scene coordinates: u grows rightwards, v downwards; the default camera sees
    u, v in [0, 1]. depth runs 0 (near) to 1 (far); a negative depth means "ground": the
    renderer derives it per pixel from the distance below the horizon.

    shape params:
      rect     (u0, v0, u1, v1), never thinner than one pixel
      ellipse  (cu, cv, ru, rv)
      polygon  convex, (u1, v1, u2, v2, ...)
      ridge    (v_base, v_cut, amplitude, then frequency, phase, weight triples): the region
               between the crest line and v_cut
      grid     (u0, v0, u1, v1, columns, rows, fill_u, fill_v): centred cells of a lattice,
               e.g. windows on a facade or lines of text on a sign
    """

    shape: str
    params: tuple[float, ...]
    label: int
    material: int
    depth: float


@dataclass(frozen=True)
class Scene:
    site_id: int
    climate: str
    horizon: float
    materials: tuple[Material, ...]
    elements: tuple[Element, ...]


@dataclass
class SceneBuilder:
    """Collects materials and elements in painting order (later elements cover earlier ones)."""

    horizon: float
    materials: list[Material] = field(default_factory=list)
    elements: list[Element] = field(default_factory=list)

    def material(self, kind: str, rgb: tuple[float, float, float], variant: float = 0.0) -> int:
        if kind not in MATERIAL_KINDS:
            raise ValueError(f"unknown material kind {kind!r}")
        clipped = tuple(min(max(float(c), 0.0), 1.0) for c in rgb)
        self.materials.append(Material(kind, clipped, float(variant)))  # type: ignore[arg-type]
        return len(self.materials) - 1

    def add(self, shape: str, params: tuple[float, ...], label: str, material: int,
            depth: float) -> None:
        if shape not in SHAPES:
            raise ValueError(f"unknown shape {shape!r}")
        values = tuple(float(p) for p in params)
        self.elements.append(Element(shape, values, class_id(label), material, float(depth)))

    def build(self, site_id: int, climate: str) -> Scene:
        return Scene(site_id, climate, self.horizon, tuple(self.materials), tuple(self.elements))
