"""Demo world: deterministic, geotagged synthetic street scenes whose look follows real
geography (see DESIGN.md, "Demo world"). Entry point: generate_demo_world(out_dir, config).

Exports are loaded lazily so that render workers, which only need numpy and Pillow, do not
pay for pandas and the GeoNames tables on start-up.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["GENERATOR_VERSION", "DemoWorldConfig", "generate_demo_world"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("geoloc_core.demo_world.generate"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
