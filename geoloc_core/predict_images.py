"""The first predict API, kept for its callers: the predict path lives in geoloc_core/predict/
(one in-memory core shared with the benchmark steps)."""

from geoloc_core.predict.predictor import predict_images

__all__ = ["predict_images"]
