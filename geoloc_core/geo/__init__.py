"""Geographic primitives: distances, benchmark metrics and the Mercator projection."""

from geoloc_core.geo.distance import (
    DISTANCE_METHODS,
    MEAN_EARTH_RADIUS_KM,
    DistanceMethod,
    distance_km,
    geodesic_km,
    haversine_km,
    validated_lat_lon,
)
from geoloc_core.geo.metrics import (
    DEFAULT_THRESHOLDS_KM,
    GeoMetrics,
    accuracy_metric_name,
    accuracy_within,
    evaluate_predictions,
    summarize_errors,
)
from geoloc_core.geo.projection import (
    WEB_MERCATOR_MAX_LAT_DEG,
    mercator_normalized,
    mercator_normalized_inverse,
)

__all__ = [
    "DEFAULT_THRESHOLDS_KM",
    "DISTANCE_METHODS",
    "MEAN_EARTH_RADIUS_KM",
    "WEB_MERCATOR_MAX_LAT_DEG",
    "DistanceMethod",
    "GeoMetrics",
    "accuracy_metric_name",
    "accuracy_within",
    "distance_km",
    "evaluate_predictions",
    "geodesic_km",
    "haversine_km",
    "mercator_normalized",
    "mercator_normalized_inverse",
    "summarize_errors",
    "validated_lat_lon",
]
