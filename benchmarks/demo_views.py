"""A small demo world for the throughput benchmarks: its views, repeated up to a count."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from geoloc_core.demo_world.generate import DemoWorldConfig, generate_demo_world


def small_demo_world(folder: Path, sites: int) -> pd.DataFrame:
    """Generate `sites` reference sites x 4 views into folder; its manifest rows."""
    no_other_split = dict.fromkeys(
        ("validation_views", "street_sites", "street_views", "unseen_sites", "unseen_views"), 0
    )
    config = DemoWorldConfig(reference_sites=sites, reference_views=4, workers=1, **no_other_split)
    return pd.read_csv(generate_demo_world(folder, config, progress=False), dtype=str)


def repeated_views(folder: Path, sites: int, count: int) -> list[tuple[str, Path, Path]]:
    """count (id, image, label map) over the world's views under new ids, so every file is
    re-read each time; sorted by id, as a shard would be."""
    rows = small_demo_world(folder, sites)
    views = [(folder / r.image, folder / r.label) for r in rows.itertuples()]
    return [(f"bench-{k:07d}", *views[k % len(views)]) for k in range(count)]
