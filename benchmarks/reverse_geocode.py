"""Reverse geocoding of one million coordinates (the acceptance bar: under a minute).

Two workloads: points uniform on the sphere (mostly sea: the nearest-place query dominates)
and points within ~5 km of GeoNames places (like photos: the city-disc queries dominate).
Prints seconds per workload, points per second, and the ratio to the one-minute budget.

    python benchmarks/reverse_geocode.py [--points 1000000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from geoloc_core.text.geocoder import GeocoderSettings, OfflineGeocoder, geonames_places

BUDGET_S = 60.0


def uniform_points(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    return lat, rng.uniform(-180.0, 180.0, n)


def photo_like_points(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    places = geonames_places()
    picks = rng.integers(0, len(places), n)
    lat = places["lat"].to_numpy()[picks] + rng.normal(0.0, 0.03, n)
    lon = places["lon"].to_numpy()[picks] + rng.normal(0.0, 0.03, n)
    return np.clip(lat, -90.0, 90.0), (lon + 180.0) % 360.0 - 180.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    start = time.perf_counter()
    geocoder = OfflineGeocoder(GeocoderSettings(15000, 4.0, 100.0))
    print(f"build (load GeoNames data, k-d trees): {time.perf_counter() - start:.1f} s")

    for name, make in (("uniform", uniform_points), ("photo-like", photo_like_points)):
        lat, lon = make(args.points, rng)
        start = time.perf_counter()
        fields = geocoder.geocode(lat, lon)
        seconds = time.perf_counter() - start
        named = float((fields["city"] != "").mean())
        print(
            f"{name:>10}: {args.points:,} points in {seconds:.1f} s "
            f"({args.points / seconds:,.0f}/s, {seconds / BUDGET_S:.2f} of the one-minute "
            f"budget), {named:.0%} with a city"
        )


if __name__ == "__main__":
    main()
