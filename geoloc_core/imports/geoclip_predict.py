"""`geoloc predict --model artifacts/imports/geoclip`: the imported GeoCLIP model behind the
predict path's results, with its gallery as the only pool (no index, no re-rank, no LMM).

Each candidate is a gallery point: `score` is GeoCLIP's probability (softmax of
logit_scale * cos over the whole gallery), `retrieval_score` the cosine; the first is the
decision. Place names come from the offline geocoder with params `text`'s settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from geoloc_core.data.decode import decode_rgb
from geoloc_core.imports.geoclip_model import GeoClipModel
from geoloc_core.predict.photos import Photo
from geoloc_core.predict.ranking import with_errors
from geoloc_core.predict.results import PhotoResult, Place, RankedCandidate
from geoloc_core.predict.usable import usable_photos
from geoloc_core.text.geocoder import GeocoderSettings
from geoloc_core.text.place_labels import PLACE_PARTS

STAGE = "geoclip-gallery"
SERVED_TOP_K = 20  # candidates a served request can ask for (its top_k trims them)


class GeoClipPredictor:
    """predict(photos) -> PhotoResult per photo, like predict.predictor.Predictor."""

    def __init__(
        self,
        folder: Path,
        geocoder: GeocoderSettings,
        top_k: int,
        clip_directory: Path | None = None,
    ) -> None:
        self.model = GeoClipModel(folder, clip_directory)
        self.geocoder_settings = geocoder
        self.top_k = top_k

    @classmethod
    def of_bundle(cls, folder: Path, top_k: int = SERVED_TOP_K) -> GeoClipPredictor:
        """A served GeoCLIP bundle (imports/geoclip_serving.py)."""
        import json

        import yaml

        from geoloc_core.imports.geoclip_serving import (
            GEOCLIP_BUNDLE,
            IMPORT_FOLDER,
            PARAMS_FILE,
        )
        from geoloc_core.text.settings import TextSettings

        folder = Path(folder)
        record = json.loads((folder / GEOCLIP_BUNDLE).read_text())
        text = yaml.safe_load((folder / PARAMS_FILE).read_text())["text"]
        clip = folder / record["clip"] if (folder / record["clip"]).is_dir() else None
        geocoder = TextSettings.from_section(text).geocoder
        return cls(folder / IMPORT_FOLDER, geocoder, top_k, clip)

    def warm_up(self) -> None:
        """Nothing to pay in advance but the geocoder (a served model's load)."""
        self._geocoder  # noqa: B018 - built now, not on the first request

    def describe(self) -> dict[str, object]:
        return {
            "variant": "geoclip",
            "retrieval_parts": [],
            "reference_images": 0,
            "gallery_points": len(self.model.gallery),
            "backbone": self.model.clip_source,
        }

    def predict(self, photos: Sequence[Photo]) -> list[PhotoResult]:
        usable = usable_photos(photos, lambda _row, photo: decode_rgb(photo.data))
        results, rows, images = usable.results, usable.rows, usable.images
        if not rows:
            return results
        top = self.model.top_k(images, self.top_k)
        for local, row in enumerate(rows):
            latlon = self.model.gallery[top.indices[local]]
            places = self._places(latlon)
            candidates = [
                RankedCandidate(
                    rank=rank + 1,
                    lat=float(lat),
                    lon=float(lon),
                    score=float(top.probabilities[local, rank]),
                    source="gallery",
                    stage=STAGE,
                    place=places[rank],
                    decision=rank == 0,
                    retrieval_rank=rank + 1,
                    retrieval_score=float(top.cosines[local, rank]),
                )
                for rank, (lat, lon) in enumerate(latlon)
            ]
            truth = results[row].exif
            if truth is not None and truth.known:
                candidates = with_errors(candidates, truth.lat, truth.lon)
            results[row].candidates = candidates
            results[row].decided_by = "geoclip: highest logit_scale * cos(image, gallery point)"
        return results

    def _places(self, latlon) -> list[Place]:
        fields = self._geocoder.geocode(latlon[:, 0].astype(float), latlon[:, 1].astype(float))
        return [Place(*row) for row in fields[list(PLACE_PARTS)].itertuples(index=False)]

    @cached_property
    def _geocoder(self):
        from geoloc_core.text.geocoder import OfflineGeocoder

        return OfflineGeocoder(self.geocoder_settings)
