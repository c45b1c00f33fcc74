"""params.yaml sections as Dagster Config defaults, and code versions that follow them.

Dagster's staleness follows code versions, not run config, so each asset's code_version is its
logic version plus a hash of exactly the params sections it reads: editing `evaluation` marks
metrics and report stale and nothing upstream.
"""

from typing import Any

import dagster as dg
from pydantic import create_model

from geoloc_core.params import section, sections_hash

# Bump an asset's logic version when its code changes what it produces.
LOGIC_VERSIONS: dict[str, str] = {
    "reference_manifest": "2",
    "benchmark_manifest": "2",
    "place_texts": "1",
    "segmentation_cache": "1",
    "backbone_weights": "1",
    "backbone_features": "1",
    "alignment_model": "2",
    "reference_embeddings": "3",
    "retrieval_index": "2",
    "candidates": "1",
    "rerank": "1",
    "lmm_diversification": "1",
    "lmm_reasoning": "1",
    "verification": "2",
    "metrics": "2",
    "baselines": "1",
    "report": "2",
    "served_model": "1",
}

# Which params sections each asset reads (its Config defaults and its code_version).
ASSET_SECTIONS: dict[str, tuple[str, ...]] = {
    "reference_manifest": ("data", "manifest"),
    "benchmark_manifest": ("data", "manifest"),
    "place_texts": ("text",),
    "segmentation_cache": ("segmentation", "benchmarks"),
    "backbone_weights": ("backbone",),
    "backbone_features": ("features", "benchmarks"),
    "alignment_model": ("model", "train"),
    "reference_embeddings": ("embeddings",),
    "retrieval_index": ("index",),
    "candidates": ("retrieval", "index"),
    "rerank": ("rerank",),
    "lmm_diversification": ("lmm",),
    "lmm_reasoning": ("lmm",),
    "verification": ("verification",),
    "metrics": ("evaluation",),
    "baselines": ("baselines", "evaluation"),
    # the row labels (variant x re-rank x verification x LMM) come from these sections
    "report": ("evaluation", "benchmarks", "model", "embeddings", "rerank", "verification", "lmm"),
    # the predict path's sections (geoloc_core/predict/settings.py); it also bundles segmentation
    # and text, whose changes reach it through segmentation_cache's and place_texts' content
    "served_model": ("retrieval", "index", "rerank", "lmm", "verification"),
}


def code_version(asset_name: str, params: dict[str, Any]) -> str:
    return f"v{LOGIC_VERSIONS[asset_name]}-{sections_hash(params, ASSET_SECTIONS[asset_name])}"


def _field_type(value: Any) -> Any:
    if isinstance(value, bool):
        return bool
    if isinstance(value, int):
        return int
    if isinstance(value, float):
        return float
    if isinstance(value, list):
        kinds = {type(v) for v in value}
        if kinds <= {int, float} and float in kinds:
            return list[float]
        if kinds == {int}:
            return list[int]
        return list[str]
    if value is None:
        return str | None
    return str


def section_config(class_name: str, section_name: str, values: dict[str, Any]) -> type[dg.Config]:
    """A Config class whose fields and defaults are one params section."""
    fields = {key: (_field_type(value), value) for key, value in values.items()}
    cls = create_model(class_name, __base__=dg.Config, **fields)
    cls.__doc__ = f"Defaults from params.yaml section '{section_name}'."
    return cls


def asset_config(asset_name: str, params: dict[str, Any]) -> type[dg.Config]:
    """Config for one asset: a field per params section it reads, defaulting to params.yaml."""
    fields: dict[str, Any] = {}
    for name in ASSET_SECTIONS[asset_name]:
        values = section(params, name)
        section_cls = section_config(f"{_camel(name)}Section", name, values)
        fields[name] = (section_cls, section_cls(**values))
    cls = create_model(f"{_camel(asset_name)}Config", __base__=dg.Config, **fields)
    cls.__doc__ = (
        f"Settings of {asset_name}; defaults from params.yaml {ASSET_SECTIONS[asset_name]}."
    )
    return cls


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
