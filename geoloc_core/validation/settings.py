"""The manifest gate's limits, read from params.yaml section `manifest`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from geoloc_core.data.settings import setting
from geoloc_core.params import ParamsError

SECTION = "manifest"


@dataclass(frozen=True)
class GateSettings:
    min_image_side: int
    max_image_pixels: int
    max_failure_rate: float
    workers: int
    expected_rows: tuple[int, int] | None  # None: the dataset has no known size

    @classmethod
    def from_params(cls, manifest_cfg: Mapping[str, Any], dataset: str) -> GateSettings:
        """Limits for one dataset; its row range is manifest.expected_rows_<dataset>, if set."""
        expected = manifest_cfg.get(f"expected_rows_{dataset}")
        if expected is not None:
            if len(expected) != 2 or int(expected[0]) > int(expected[1]):
                raise ParamsError(
                    f"params.yaml {SECTION}.expected_rows_{dataset} must be [min, max], "
                    f"got {expected}"
                )
            expected = (int(expected[0]), int(expected[1]))
        return cls(
            min_image_side=int(setting(manifest_cfg, "min_image_side", SECTION)),
            max_image_pixels=int(setting(manifest_cfg, "max_image_pixels", SECTION)),
            max_failure_rate=float(setting(manifest_cfg, "max_quarantine_fraction", SECTION)),
            workers=int(setting(manifest_cfg, "image_check_workers", SECTION)),
            expected_rows=expected,
        )
