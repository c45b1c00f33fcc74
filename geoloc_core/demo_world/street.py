"""Street geometry shared by the layout modules: a road running to a vanishing point on the
horizon, and props (trees, cars, fronts of buildings) that are painted far to near."""

from __future__ import annotations

from dataclasses import dataclass, field

from geoloc_core.demo_world.raster import GROUND_FAR_DEPTH
from geoloc_core.demo_world.scene import SceneBuilder

STREET_BOTTOM = 1.25  # v where the road's bottom edge lies (below every camera's view)
SCENE_LEFT, SCENE_RIGHT = -0.45, 1.45  # u span that shifted and zoomed cameras may see

Part = tuple[str, tuple[float, ...], str, int]  # shape, params, ADE20K name, material index


@dataclass(frozen=True)
class Street:
    horizon: float
    vanish_u: float
    half_width_bottom: float  # road half-width at STREET_BOTTOM
    kerb_ratio: float  # outer sidewalk edge / road edge

    def scale(self, v: float) -> float:
        """Perspective size factor of something standing at v (1 at the bottom of the view)."""
        return max((v - self.horizon) / (1.0 - self.horizon), 0.04)

    def road_half_width(self, v: float) -> float:
        return self.half_width_bottom * max(v - self.horizon, 0.0) / (STREET_BOTTOM - self.horizon)

    def kerb_half_width(self, v: float) -> float:
        return self.road_half_width(v) * self.kerb_ratio

    def depth(self, v: float) -> float:
        """Same depth the renderer gives the ground at v, so fog treats both alike."""
        below = min(max((v - self.horizon) / (1.0 - self.horizon), 0.0), 1.0)
        return GROUND_FAR_DEPTH * (1.0 - below)


@dataclass
class Prop:
    """Something standing on the ground at base_v; nearer props must cover farther ones."""

    base_v: float
    parts: list[Part] = field(default_factory=list)

    def add(self, shape: str, params: tuple[float, ...], label: str, material: int) -> None:
        self.parts.append((shape, params, label, material))


def paint_props(builder: SceneBuilder, street: Street, props: list[Prop]) -> None:
    """Adds props far to near (stable for equal base_v, so the result is deterministic)."""
    for prop in sorted(props, key=lambda p: p.base_v):
        depth = street.depth(prop.base_v)
        for shape, params, label, material in prop.parts:
            builder.add(shape, params, label, material, depth)
