"""Place names of candidates: a reference image's from the place texts (as the candidates step
names them: MP16-Pro's own fields, or the offline geocoder's), any other point's (an LMM answer,
a gallery point) from the offline geocoder with the text section's settings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from geoloc_core.predict.results import UNKNOWN_PLACE, Place
from geoloc_core.text.place_labels import PLACE_PARTS

if TYPE_CHECKING:
    from geoloc_core.text.geocoder import GeocoderSettings, OfflineGeocoder


class PlaceNames:
    def __init__(self, place_texts: Path, geocoder: GeocoderSettings) -> None:
        table = pd.read_csv(
            place_texts,
            dtype=str,
            keep_default_na=False,
            usecols=lambda column: column in ("id", *PLACE_PARTS),
        )
        for column in PLACE_PARTS:
            if column not in table.columns:
                table[column] = ""
        self._by_id = {
            row[0]: Place(*row[1:])
            for row in table[["id", *PLACE_PARTS]].itertuples(index=False, name=None)
        }
        self._geocoder_settings = geocoder

    def of_references(self, ids: Iterable[str]) -> list[Place]:
        return [self._by_id.get(str(i), UNKNOWN_PLACE) for i in ids]

    def of_points(self, latlon: Sequence[tuple[float, float]] | np.ndarray) -> list[Place]:
        """Reverse geocoded offline; the geocoder is built on first use (about a second)."""
        points = np.asarray(latlon, np.float64).reshape(-1, 2)
        if not len(points):
            return []
        fields = self._geocoder.geocode(points[:, 0], points[:, 1])
        return [Place(*row) for row in fields[list(PLACE_PARTS)].itertuples(index=False)]

    @cached_property
    def _geocoder(self) -> OfflineGeocoder:
        from geoloc_core.text.geocoder import OfflineGeocoder

        return OfflineGeocoder(self._geocoder_settings)
