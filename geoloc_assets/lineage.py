"""What produced a number: the settings of an asset and of everything upstream of it.

A metrics run that carries only `evaluation.*` can be neither compared with another one nor found
by the model variant: the model, re-rank, LMM and verification settings that fed it live on
other runs. So every asset run carries, as flat params, the settings each upstream asset ran
with (as its materialization recorded them: geoloc_assets.recorded, not params.yaml) and the
upstream code versions, with its own settings on top; and tags and a run name that say in a few
words what the run is.
"""

import ast
import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import dagster as dg

from geoloc_assets.partitions import is_benchmark_partitioning

if TYPE_CHECKING:
    from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph

MAX_PARAM_LENGTH = 6000
# Longer values (the prompts) become a digest: still comparable, and the runs table stays
# readable.
LONG_VALUE = 250
CODE_VERSION_PREFIX = "code_version."
# A leaf that names a secret itself (the api_key_env leaves name an environment variable).
SECRET_NAME = re.compile(r"(^|[._])(api_?key|secret|password|passwd|token|credentials?)$", re.I)
SECRET_ENV_SUFFIX = "_env"
MIN_SECRET_LENGTH = 4
NAME_TAGS = ("geoloc.variant", "geoloc.rerank", "geoloc.verification")


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested sections -> 'section.key' strings, as MLflow params must be flat strings."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, f"{name}."))
        else:
            flat[name] = str(value)[:MAX_PARAM_LENGTH]
    return flat


def lineage_params(
    context: dg.AssetExecutionContext,
    own: Mapping[str, Any],
    upstream: Mapping[str, Mapping[str, Any]],
) -> dict[str, str]:
    """Own params over the settings each upstream asset ran with (geoloc_assets.recorded) and
    the upstream code versions, secrets left out."""
    graph = full_asset_graph(context)
    flat: dict[str, str] = {}
    for name in sorted(upstream):
        flat.update(_digested(flatten_params(upstream[name])))
    keys = sorted(graph.upstream_key_iterator(context.asset_key), key=lambda k: k.path)
    for key in [*keys, context.asset_key]:
        version = graph.get(key).code_version
        if version:
            flat[f"{CODE_VERSION_PREFIX}{key.to_user_string()}"] = version
    flat.update(_digested(flatten_params(own)))
    return without_secrets(flat)


def full_asset_graph(context: dg.AssetExecutionContext) -> "BaseAssetGraph":
    """The whole graph: a job's own graph stubs what is not selected and forgets the
    dependencies of those stubs, so it is walked in the graph the job was cut from."""
    graph = context.job_def.asset_layer.asset_graph
    return getattr(graph, "source_asset_graph", graph)


def _digested(flat: Mapping[str, str]) -> dict[str, str]:
    return {k: _short(v) for k, v in flat.items()}


def _short(value: str) -> str:
    if len(value) <= LONG_VALUE:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:16]
    return f"sha256:{digest} ({len(value)} chars)"


def without_secrets(flat: Mapping[str, str]) -> dict[str, str]:
    """Params minus any leaf that names a secret and any value that holds one of the secrets
    the *_env params point to: keys live only in the environment."""
    secrets = _secret_values(flat)
    return {
        k: v
        for k, v in flat.items()
        if not SECRET_NAME.search(k) and not any(s in v for s in secrets)
    }


def _secret_values(flat: Mapping[str, str]) -> set[str]:
    names = {v for k, v in flat.items() if k.endswith(SECRET_ENV_SUFFIX)}
    values = {os.environ.get(name, "") for name in names}
    return {v for v in values if len(v) >= MIN_SECRET_LENGTH}


def comparison_tags(
    flat: Mapping[str, str], partition: str, partitions_def: dg.PartitionsDefinition | None
) -> dict[str, str]:
    """geoloc.* tags to filter and group runs by in the MLflow UI; only those the lineage has."""
    tags: dict[str, str] = {}
    if "model.variant" in flat:
        tags["geoloc.variant"] = flat["model.variant"]
    parts = _embedding_parts(flat.get("embeddings.parts", "auto"))
    if parts != "auto":
        tags["geoloc.embeddings"] = parts
    if partition and is_benchmark_partitioning(partitions_def):
        tags["geoloc.benchmark"] = partition
    if "rerank.method" in flat:
        tags["geoloc.rerank"] = _rerank_label(flat)
    if "verification.method" in flat:
        tags["geoloc.verification"] = flat["verification.method"]
    if "lmm.provider" in flat:
        tags["geoloc.lmm"] = _lmm_label(flat)
    return tags


def _embedding_parts(value: str) -> str:
    """"['frozen', 'image_gps']" -> 'frozen+image_gps' (G3's ablation rows share a variant)."""
    try:
        parts = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value
    return "+".join(str(p) for p in parts) if isinstance(parts, list | tuple) else value


def _rerank_label(flat: Mapping[str, str]) -> str:
    method = flat["rerank.method"]
    if method == "none" or "rerank.eps_km" not in flat:
        return method
    try:
        return f"{method}-{float(flat['rerank.eps_km']):g}km"
    except ValueError:
        return method


def _lmm_label(flat: Mapping[str, str]) -> str:
    provider = flat["lmm.provider"]
    if provider == "none":
        return "none"
    parts = [provider, flat.get("lmm.mode", ""), flat.get("lmm.model", "")]
    return "/".join(p for p in parts if p)


def run_name(asset_key: str, partition: str, tags: Mapping[str, str]) -> str:
    """E.g. 'validation dualgeo dbscan-50km verify · metrics': what tells runs apart first (the
    benchmark, then the settings), the asset last; MLflow's runs table shows some 17
    characters of a name. A shard stays with its asset; no LMM is said by the tag alone."""
    words = [tags["geoloc.benchmark"]] if "geoloc.benchmark" in tags else []
    if "geoloc.variant" in tags and "geoloc.embeddings" in tags:
        tags = {**tags, "geoloc.variant": f"{tags['geoloc.variant']}({tags['geoloc.embeddings']})"}
    words += [tags[t] for t in NAME_TAGS if t in tags]
    if tags.get("geoloc.lmm", "none") != "none":
        words.append(f"lmm:{_short_model(tags['geoloc.lmm'])}")
    shard = f"[{partition}]" if partition and "geoloc.benchmark" not in tags else ""
    return " ".join([*words, "·", asset_key + shard]) if words else asset_key + shard


def _short_model(label: str) -> str:
    """'transformers/g3/Qwen/Qwen2.5-VL-7B-Instruct' -> 'transformers/g3/Qwen2.5-VL-7B-Instruct'."""
    parts = label.split("/")
    return "/".join(parts[:2] + parts[-1:]) if len(parts) > 3 else label


def batches(items: Iterable[Any], size: int) -> list[list[Any]]:
    """MLflow takes at most 100 params per log_batch call."""
    items = list(items)
    return [items[i : i + size] for i in range(0, len(items), size)]
