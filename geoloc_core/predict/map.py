"""`geoloc predict --map OUT.png`: each photo's candidates, its decision with its confidence
circles (the radii that hold the truth with 50 % and 90 % probability, drawn as geodesic
circles) and (with EXIF GPS) its true position, on the real coastlines the report's maps use
(report/coastlines.py).

One panel per located photo (the first MAX_PANELS), zoomed to what it shows. matplotlib and
the land mask are loaded only when a map is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap

from geoloc_core.confidence.model import WHOLE_EARTH_KM
from geoloc_core.predict.results import PhotoResult
from geoloc_core.report.coastlines import Coastlines, coastlines

MAX_PANELS = 12
MIN_SPAN_DEG = 24.0  # the smallest window, in longitude degrees (half as much latitude)
MARGIN_DEG = 6.0
SOURCE_COLOURS = {
    "retrieval": "#1f4e9c",
    "re-rank": "#2a9d3a",
    "lmm": "#8e44ad",
    "gallery": "#7f7f7f",
}
DECISION_COLOUR = "#e07b00"
CIRCLE_STYLES = ("-", "--", ":")  # one per stated level, the smallest radius first
CIRCLE_POINTS = 181
TRUTH_COLOUR = "#d62728"
DPI = 110


def _window(lon: np.ndarray, lat: np.ndarray) -> tuple[float, float, float, float]:
    """A 2:1 window around the points with a margin, never smaller than MIN_SPAN_DEG and
    never beyond the world."""
    west, east = lon.min() - MARGIN_DEG, lon.max() + MARGIN_DEG
    south, north = lat.min() - MARGIN_DEG, lat.max() + MARGIN_DEG
    span = max(east - west, 2 * (north - south), MIN_SPAN_DEG)
    if span >= 360:
        return -180.0, 180.0, -90.0, 90.0
    centre_lon, centre_lat = (west + east) / 2, (south + north) / 2
    west = min(max(centre_lon - span / 2, -180.0), 180.0 - span)
    half_lat = min(span / 4, 90.0)
    south = min(max(centre_lat - half_lat, -90.0), 90.0 - 2 * half_lat)
    return west, west + span, south, south + 2 * half_lat


def geodesic_circle(lat: float, lon: float, radius_km: float) -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) of the points radius_km from (lat, lon) on the WGS-84 ellipsoid, longitudes
    unwrapped along the line, so a circle across the antimeridian stays one line (one around a
    pole, or around the antipode, spans every longitude: draw it shifted by +-360 too)."""
    from pyproj import Geod

    azimuths = np.linspace(0.0, 360.0, CIRCLE_POINTS)
    lons, lats, _ = Geod(ellps="WGS84").fwd(
        np.full(CIRCLE_POINTS, lon), np.full(CIRCLE_POINTS, lat), azimuths,
        np.full(CIRCLE_POINTS, radius_km * 1000.0),
    )
    lons = np.rad2deg(np.unwrap(np.deg2rad(np.asarray(lons, np.float64))))
    return lons, np.asarray(lats, np.float64)


def _circles(result: PhotoResult) -> list[tuple[float, float, np.ndarray, np.ndarray]]:
    """(level, radius km, lon, lat) of each confidence circle around the decision; a radius
    of the whole Earth has no circle."""
    decision, confidence = result.decision, result.confidence
    if decision is None or confidence is None:
        return []
    return [
        (level, km, *geodesic_circle(decision.lat, decision.lon, km))
        for level, km in confidence.radii
        if km < WHOLE_EARTH_KM
    ]


def _panel(
    ax: plt.Axes, result: PhotoResult, top_k: int, coast: Coastlines, all_views: bool
) -> None:
    shown = result.listed(all_views)[:top_k]
    lon = np.array([c.lon for c in shown])
    lat = np.array([c.lat for c in shown])
    exif = result.exif
    truth = exif if exif is not None and exif.known else None
    every_lon = np.append(lon, truth.lon) if truth else lon
    every_lat = np.append(lat, truth.lat) if truth else lat
    circles = _circles(result)
    if circles:  # the smallest circle in view; the larger ones may run off the panel
        every_lon = np.append(every_lon, circles[0][2])
        every_lat = np.append(every_lat, np.clip(circles[0][3], -90.0, 90.0))
    west, east, south, north = _window(every_lon, every_lat)
    ax.imshow(
        coast.land,
        extent=coast.extent,
        origin="upper",
        interpolation="nearest",
        cmap=ListedColormap(["#e4eef7", "#f1ede3"]),
        zorder=0,
        rasterized=True,
    )
    ax.add_collection(LineCollection(coast.lines, colors="#7d8a96", linewidths=0.5, zorder=1))
    for source, colour in SOURCE_COLOURS.items():
        picked = [i for i, c in enumerate(shown) if c.source == source and not c.decision]
        if picked:
            ax.scatter(lon[picked], lat[picked], s=36, c=colour, edgecolors="white",
                       linewidths=0.6, zorder=3, label=f"candidate ({source})")
    ranks_at: dict[tuple[float, float], list[str]] = {}  # (--all-views) views share a point
    for candidate in shown:
        ranks_at.setdefault((candidate.lon, candidate.lat), []).append(str(candidate.rank))
    for point, ranks in ranks_at.items():
        ax.annotate(",".join(ranks), point, xytext=(5, 4), textcoords="offset points",
                    fontsize=7, color="#333333", zorder=5)
    decision = result.decision
    if decision is not None:
        ax.scatter([decision.lon], [decision.lat], s=190, marker="*", c=DECISION_COLOUR,
                   edgecolors="black", linewidths=0.7, zorder=4,
                   label=f"decision: {decision.place.label or 'no place within reach'}")
    for (level, km, circle_lon, circle_lat), style in zip(circles, CIRCLE_STYLES, strict=False):
        for shift in (0.0, -360.0, 360.0):  # the parts beyond +-180 drawn where they belong
            ax.plot(circle_lon + shift, circle_lat, color=DECISION_COLOUR, lw=1.3, ls=style,
                    zorder=3, label=f"{level * 100:g} % confidence: {km:,.0f} km"
                    if shift == 0 else None)
    title = Path(result.image).name
    if truth is not None:
        ax.scatter([truth.lon], [truth.lat], s=70, marker="^", c=TRUTH_COLOUR,
                   edgecolors="black", linewidths=0.6, zorder=4, label="EXIF GPS (truth)")
        if decision is not None:
            ax.plot([truth.lon, decision.lon], [truth.lat, decision.lat], color=TRUTH_COLOUR,
                    lw=0.9, ls="--", zorder=2)
            if decision.error_km is not None:
                title += f"  (decision {decision.error_km:,.0f} km from the truth)"
    ax.set(xlim=(west, east), ylim=(south, north), xlabel="longitude", ylabel="latitude")
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower left", fontsize=7, framealpha=0.9)


def draw_map(
    results: Sequence[PhotoResult], out: Path, top_k: int, all_views: bool = False
) -> tuple[Path, int]:
    """Write the map; returns (its path, how many located photos it shows)."""
    located = [r for r in results if r.candidates]
    if not located:
        raise ValueError("no photo was located, so --map has nothing to draw")
    shown = located[:MAX_PANELS]
    columns = 1 if len(shown) == 1 else 2
    rows = math.ceil(len(shown) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(9 * columns, 5.2 * rows), squeeze=False)
    coast = coastlines()
    for ax, result in zip(axes.flat, shown, strict=False):
        _panel(ax, result, top_k, coast, all_views)
    for ax in list(axes.flat)[len(shown) :]:
        ax.axis("off")
    if len(located) > len(shown):
        fig.suptitle(f"the first {len(shown)} of {len(located)} located photos", fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return out, len(shown)
