"""Evaluation: our metrics against G3's published evaluation loop, same predictions.

The peer is re-implemented here from its description: the predictions in a pandas DataFrame,
`df.apply(..., axis=1)` calling geopy's `geodesic((lat, lon), (lat_pred, lon_pred)).km` on
each row, then the share of rows with distance strictly `<` each threshold. Ours is
`geoloc_core.geo.metrics.evaluate_predictions` (validated inputs, one vectorised
pyproj/PROJ geodesic call, the same strict `<`). Both solve Karney's geodesic on WGS-84, so
the distances should agree to far below a metre; the table says how far.

Predictions resemble a geolocation model's: errors spread log-uniformly from 10 m to 20,000 km
(so every threshold band is populated) around truths uniform on the sphere, plus a few
near-antipodal pairs, where a Vincenty-style solver would fail to converge.

    python benchmarks/evaluation_speed.py [--pairs 100000] [--repeats 3] [--peer-repeats N]

Not a test: it prints numbers and ratios.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from bench_rows import Row, all_met, bench_parser, print_and_write, timed, verdict
from geopy.distance import geodesic

from geoloc_core.geo.distance import distance_km
from geoloc_core.geo.metrics import DEFAULT_THRESHOLDS_KM, evaluate_predictions

SECTION = "1 evaluation"
GOAL_SPEEDUP = 50.0
GOAL_MAX_DIFF_M = 1.0
EARTH_RADIUS_M = 6_371_008.8


def predictions(n: int, seed: int = 0) -> pd.DataFrame:
    """Truth uniform on the sphere; each prediction at a log-uniform error in a random bearing."""
    rng = np.random.default_rng(seed)
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    lon = rng.uniform(-180.0, 180.0, n)
    error = np.exp(rng.uniform(np.log(10.0), np.log(2.0e7), n)) / EARTH_RADIUS_M  # radians
    bearing = rng.uniform(0.0, 2 * np.pi, n)
    phi, lam = np.radians(lat), np.radians(lon)
    phi2 = np.arcsin(np.sin(phi) * np.cos(error) + np.cos(phi) * np.sin(error) * np.cos(bearing))
    lam2 = lam + np.arctan2(
        np.sin(bearing) * np.sin(error) * np.cos(phi), np.cos(error) - np.sin(phi) * np.sin(phi2)
    )
    pred_lat = np.degrees(phi2)
    pred_lon = (np.degrees(lam2) + 180.0) % 360.0 - 180.0
    antipodal = rng.choice(n, size=max(1, n // 1000), replace=False)
    pred_lat[antipodal] = -lat[antipodal] + rng.normal(0, 0.01, antipodal.size)
    pred_lon[antipodal] = (lon[antipodal] + 360.0) % 360.0 - 180.0
    pred_lat = np.clip(pred_lat, -90.0, 90.0)
    return pd.DataFrame({"LAT": lat, "LON": lon, "LAT_pred": pred_lat, "LON_pred": pred_lon})


def peer_evaluate(
    df: pd.DataFrame, thresholds: Sequence[float] = DEFAULT_THRESHOLDS_KM
) -> tuple[dict[float, float], np.ndarray]:
    """G3's loop: geopy geodesic per DataFrame row, then strict < per threshold (percent)."""

    def distance(row: pd.Series) -> float:
        return geodesic((row["LAT"], row["LON"]), (row["LAT_pred"], row["LON_pred"])).km

    frame = df.copy()
    frame["geodesic"] = frame.apply(distance, axis=1)
    accuracy = {t: 100.0 * float((frame["geodesic"] < t).mean()) for t in thresholds}
    return accuracy, frame["geodesic"].to_numpy()


def ours_evaluate(df: pd.DataFrame) -> dict[float, float]:
    metrics = evaluate_predictions(df["LAT"], df["LON"], df["LAT_pred"], df["LON_pred"])
    return {t: float(metrics[f"acc_{t:g}km"]) for t in DEFAULT_THRESHOLDS_KM}


def run(
    pairs: int = 100_000, repeats: int = 3, seed: int = 0, peer_repeats: int | None = None
) -> list[Row]:
    df = predictions(pairs, seed)
    ours_acc, ours_t = timed(lambda: ours_evaluate(df), repeats, warmup=1)
    (peer_acc, peer_km), peer_t = timed(lambda: peer_evaluate(df), peer_repeats or repeats)
    ours_km = distance_km(df["LAT"], df["LON"], df["LAT_pred"], df["LON_pred"])
    max_diff_m = float(np.max(np.abs(ours_km - peer_km)) * 1000.0)
    # Identical means the same number of rows under each threshold (the percentages are then
    # equal up to the last bit of two ways of dividing by n).
    identical = all(
        round(ours_acc[t] * pairs / 100) == round(peer_acc[t] * pairs / 100)
        for t in DEFAULT_THRESHOLDS_KM
    )
    speedup = peer_t.median / ours_t.median
    n = f"{pairs // 1000}k" if pairs >= 1000 else str(pairs)
    accuracies = " / ".join(f"{ours_acc[t]:.2f}" for t in DEFAULT_THRESHOLDS_KM)
    speed_met = verdict(speedup, GOAL_SPEEDUP)
    diff_met = verdict(max_diff_m, GOAL_MAX_DIFF_M, higher_is_better=False)
    return [
        Row(
            SECTION,
            f"evaluation s, {n} pairs: evaluate_predictions vs G3's df.apply(geopy geodesic)",
            f"{ours_t.median:.3f}",
            f"{peer_t.median:.2f}",
            f"{speedup:.0f}x faster",
            f">= {GOAL_SPEEDUP:.0f}x at <= {GOAL_MAX_DIFF_M:g} m",
            all_met(speed_met, diff_met, "yes" if identical else "NO"),
            {
                "pairs": pairs,
                **ours_t.as_values("ours"),
                **peer_t.as_values("peer"),
                "speedup": speedup,
            },
        ),
        Row(
            SECTION,
            "max distance difference, metres (pyproj Karney vs geopy/geographiclib)",
            f"{max_diff_m:.1e}",
            f"{GOAL_MAX_DIFF_M:g}",
            f"{max_diff_m / GOAL_MAX_DIFF_M:.1e}",
            f"<= {GOAL_MAX_DIFF_M:g} m",
            diff_met,
            {"max_diff_m": max_diff_m},
        ),
        Row(
            SECTION,
            "accuracy % within 1/25/200/750/2500 km (strict <)",
            accuracies,
            " / ".join(f"{peer_acc[t]:.2f}" for t in DEFAULT_THRESHOLDS_KM),
            "identical" if identical else "DIFFERENT",
            "identical",
            "yes" if identical else "NO",
            {"ours": ours_acc, "peer": peer_acc},
        ),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--peer-repeats", type=int, help="runs of the peer's loop (default: --repeats)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = run(args.pairs, args.repeats, args.seed, args.peer_repeats)
    peer = args.peer_repeats or args.repeats
    print_and_write(
        f"Evaluation, {args.pairs:,} pairs, median of {args.repeats} / {peer} runs", rows, args.json
    )


if __name__ == "__main__":
    main()
