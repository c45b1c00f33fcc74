"""Reverse geocoding of one million coordinates (the acceptance bar: under a minute).

Two workloads: points uniform on the sphere (mostly sea: the nearest-place query dominates)
and points within ~5 km of GeoNames places (like photos: the city-disc queries dominate).
Prints seconds per workload (median of --repeats runs), points per second, and the ratio to the
one-minute budget.

    python benchmarks/reverse_geocode.py [--points 1000000] [--repeats 3]
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from bench_rows import Row, bench_parser, print_and_write, timed, verdict

from geoloc_core.text.geocoder import GeocoderSettings, OfflineGeocoder, geonames_places

BUDGET_S = 60.0
SECTION = "3 reverse geocoding"


def uniform_points(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    return lat, rng.uniform(-180.0, 180.0, n)


def photo_like_points(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    places = geonames_places()
    picks = rng.integers(0, len(places), n)
    lat = places["lat"].to_numpy()[picks] + rng.normal(0.0, 0.03, n)
    lon = places["lon"].to_numpy()[picks] + rng.normal(0.0, 0.03, n)
    return np.clip(lat, -90.0, 90.0), (lon + 180.0) % 360.0 - 180.0


def run(points: int = 1_000_000, repeats: int = 3, seed: int = 0) -> list[Row]:
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    geocoder = OfflineGeocoder(GeocoderSettings(15000, 4.0, 100.0))
    build_s = time.perf_counter() - start
    print(f"build (load GeoNames data, k-d trees): {build_s:.1f} s")
    rows = []
    for name, make in (("uniform", uniform_points), ("photo-like", photo_like_points)):
        lat, lon = make(points, rng)
        fields, timing = timed(lambda lat=lat, lon=lon: geocoder.geocode(lat, lon), repeats)
        seconds = timing.median
        rate = points / seconds
        named = float((fields["city"] != "").mean())
        print(
            f"{name:>10}: {points:,} points in {seconds:.1f} s "
            f"({rate:,.0f}/s, {seconds / BUDGET_S:.2f} of the one-minute budget), "
            f"{named:.0%} with a city"
        )
        rows.append(
            Row(
                SECTION,
                f"reverse geocoding, {points / 1e6:g}M {name} points: coordinates/s "
                f"(median of {repeats}; {named:.0%} get a city)",
                f"{rate:,.0f}",
                f"{points / BUDGET_S:,.0f} (1M per minute)",
                f"{rate / (1e6 / BUDGET_S):.1f}x",
                ">= 1M per minute",
                verdict(rate, 1e6 / BUDGET_S),
                {
                    "points": points,
                    "per_s": rate,
                    "with_city": named,
                    "build_s": build_s,
                    **timing.as_values("geocode"),
                },
            )
        )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = run(args.points, args.repeats, args.seed)
    print_and_write("Reverse geocoding", rows, args.json)


if __name__ == "__main__":
    main()
