"""The predict path as an MLflow pyfunc model: base64-encoded photos in, ranked candidates out.

Input: a table with a column `image` (the photo's bytes, base64; a data URL is accepted) and
an optional `name`. Output: one JSON object per row, the same object `geoloc predict --json`
writes under "images" for the same photo (geoloc_core/predict/results.py): one entry per place,
as the command lists them by default, and the decision's confidence radii (calibrated on
validation; the bundle carries the calibration). The optional parameter `top_k` (default 5, as the
command) limits the places listed.

The model loads its bundle (geoloc_core/serving/bundle.py) and nothing of the project; an LMM
key, when lmm.provider needs one, is read from the serving process's environment.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import (
    Array,
    ColSpec,
    DataType,
    Object,
    ParamSchema,
    ParamSpec,
    Property,
    Schema,
)

from geoloc_core.predict.photos import Photo

BUNDLE_ARTIFACT = "bundle"
DEFAULT_TOP_K = 5
DATA_URL_MARK = ";base64,"


def photo_from_base64(name: str, encoded: Any) -> Photo:
    """A photo from its base64 text, or with the reason it is not one."""
    if not isinstance(encoded, str) or not encoded.strip():
        return Photo(name, problem="no image: the `image` field is empty")
    text = encoded.strip()
    if text.startswith("data:") and DATA_URL_MARK in text:
        text = text.split(DATA_URL_MARK, 1)[1]
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return Photo(name, problem="the `image` field is not base64-encoded bytes")
    return Photo(name, data)


class ServedPredictor(mlflow.pyfunc.PythonModel):
    """Loads the bundle once per process; each request is geolocated in memory."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        from geoloc_core.predict.predictor import Predictor

        bundle = Path(context.artifacts[BUNDLE_ARTIFACT])
        if (bundle / "geoclip_bundle.json").is_file():  # an imported GeoCLIP (docs/imports.md)
            from geoloc_core.imports.geoclip_predict import GeoClipPredictor

            self._predictor = GeoClipPredictor.of_bundle(bundle)
        else:
            self._predictor = Predictor.of_bundle(bundle)
        self._predictor.warm_up()

    # model_input carries no type hint on purpose: MLflow would derive the signature from it
    # and replace the explicit one below
    def predict(self, context, model_input, params: dict[str, Any] | None = None) -> list[dict]:
        table = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if "image" not in table.columns:
            raise ValueError("the input needs an `image` column: the photo, base64-encoded")
        names = table["name"] if "name" in table.columns else [None] * len(table)
        photos = [
            photo_from_base64(str(name) if isinstance(name, str) and name else f"image {i}", text)
            for i, (name, text) in enumerate(zip(names, table["image"], strict=True))
        ]
        top_k = int((params or {}).get("top_k") or DEFAULT_TOP_K)
        return [result.as_dict(top_k) for result in self._predictor.predict(photos)]


def _optional(name: str, dtype: Any) -> Property:
    return Property(name, dtype, required=False)


def signature() -> ModelSignature:
    """Photos in (base64), one object of ranked candidates per photo out."""
    place = Object([Property(k, DataType.string) for k in ("city", "state", "country")])
    candidate = Object(
        [
            Property("rank", DataType.long),
            Property("lat", DataType.double),
            Property("lon", DataType.double),
            _optional("score", DataType.double),
            Property("source", DataType.string),
            Property("stage", DataType.string),
            Property("place", place),
            Property("place_name", DataType.string),
            Property("decision", DataType.boolean),
            _optional("ref_id", DataType.string),
            _optional("retrieval_rank", DataType.long),
            _optional("retrieval_score", DataType.double),
            _optional("verification_score", DataType.double),
            _optional("error_km", DataType.double),
            Property("views", DataType.long),
        ]
    )
    point = Object([Property("lat", DataType.double), Property("lon", DataType.double)])
    radius = Object([Property("level", DataType.double), Property("radius_km", DataType.double)])
    confidence = Object(
        [
            Property("radii", Array(radius)),
            Property("calibrated_on", DataType.string),
            Property("spread_km", DataType.double),
            Property("agreement", DataType.double),
            Property("margin", DataType.double),
        ]
    )
    outputs = Schema(
        [
            ColSpec(DataType.string, "image"),
            ColSpec(DataType.string, "error", required=False),
            ColSpec(DataType.double, "lat", required=False),
            ColSpec(DataType.double, "lon", required=False),
            ColSpec(DataType.double, "score", required=False),
            ColSpec(DataType.string, "source", required=False),
            ColSpec(DataType.string, "place_name", required=False),
            ColSpec(DataType.double, "error_km", required=False),
            ColSpec(DataType.string, "decided_by", required=False),
            ColSpec(confidence, "confidence", required=False),
            ColSpec(DataType.string, "warning", required=False),
            ColSpec(point, "exif_gps", required=False),
            ColSpec(DataType.string, "exif_note", required=False),
            ColSpec(Array(candidate), "candidates"),
            ColSpec(DataType.long, "candidates_total"),
            ColSpec(DataType.long, "places_total"),
            ColSpec(Array(DataType.string), "neighbours"),
        ]
    )
    inputs = Schema(
        [ColSpec(DataType.string, "image"), ColSpec(DataType.string, "name", required=False)]
    )
    params = ParamSchema([ParamSpec("top_k", DataType.long, DEFAULT_TOP_K)])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)
