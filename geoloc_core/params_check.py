"""Every params section checked when params load, so a bad setting is refused before any asset
runs: one line naming the key and what is allowed (geoloc status, geoloc materialize, and the
Dagster definitions all load through here)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from geoloc_core.params import ParamsError, section

DISTANCES = ("geodesic", "haversine")


def _benchmarks(m: Mapping[str, Any]) -> None:
    from geoloc_core.data.sources import BENCHMARK_SOURCES

    names = m.get("names")
    if not isinstance(names, list) or not names:
        raise ValueError(f"benchmarks.names={names!r} must be a non-empty list")
    unknown = [n for n in names if n not in BENCHMARK_SOURCES]
    if unknown:
        raise ValueError(f"benchmarks.names: {unknown} not among {list(BENCHMARK_SOURCES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"benchmarks.names={names} names a benchmark twice")


def _evaluation(m: Mapping[str, Any]) -> None:
    thresholds = m.get("thresholds_km")
    if (
        not isinstance(thresholds, list)
        or not thresholds
        or any(isinstance(t, bool) or not isinstance(t, int | float) or t <= 0 for t in thresholds)
        or sorted(thresholds) != thresholds
    ):
        raise ValueError(f"evaluation.thresholds_km={thresholds!r} must be ascending numbers > 0")
    if m.get("distance") not in DISTANCES:
        raise ValueError(f"evaluation.distance={m.get('distance')!r} is not one of {DISTANCES}")


def _checks(root: Path) -> dict[str, Callable[[Mapping[str, Any]], Any]]:
    """Section name -> the typed parser that refuses its bad values (imported lazily)."""
    from geoloc_core.baselines.settings import BaselineSettings
    from geoloc_core.demo_world.generate import DemoWorldConfig
    from geoloc_core.lmm.settings import LmmSettings
    from geoloc_core.models.config import BackboneConfig, FeaturesConfig, ModelConfig, TrainConfig
    from geoloc_core.rerank.settings import RerankSettings
    from geoloc_core.retrieval.index_settings import IndexSettings
    from geoloc_core.retrieval.settings import EmbeddingSettings, RetrievalSettings
    from geoloc_core.segmentation.settings import SegmentationSettings
    from geoloc_core.text.settings import TextSettings
    from geoloc_core.validation.settings import GateSettings
    from geoloc_core.verification.settings import VerificationSettings

    return {
        "demo_world": DemoWorldConfig.from_mapping,
        "manifest": lambda m: GateSettings.from_params(m, "demo"),
        "text": lambda m: TextSettings.from_params(m, root),
        "segmentation": SegmentationSettings.from_section,
        "backbone": BackboneConfig.from_mapping,
        "features": FeaturesConfig.from_mapping,
        "model": ModelConfig.from_mapping,
        "train": TrainConfig.from_mapping,
        "embeddings": EmbeddingSettings.from_section,
        "index": IndexSettings.from_section,
        "retrieval": RetrievalSettings.from_section,
        "rerank": RerankSettings.from_section,
        "verification": VerificationSettings.from_section,
        "lmm": LmmSettings.from_section,
        "baselines": BaselineSettings.from_section,
        "benchmarks": _benchmarks,
        "evaluation": _evaluation,
    }


def validate_params(params: Mapping[str, Any], root: Path) -> None:
    """ParamsError with one line for the first bad setting; nothing when all are sound."""
    for name, check in _checks(root).items():
        values = section(params, name)
        try:
            check(values)
        except (ValueError, TypeError, KeyError) as exc:
            raise ParamsError(f"params.yaml: {_one_line(exc)}") from None
    _cross_checks(params)


def _cross_checks(params: Mapping[str, Any]) -> None:
    """Settings valid alone but not together."""
    from geoloc_core.models.variants import retrieval_parts

    parts = params["embeddings"]["parts"]
    try:
        retrieval_parts(params["model"]["variant"], parts)
    except ValueError as exc:
        raise ParamsError(f"params.yaml: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().strip("'\"")
    return " ".join(text.split())
