"""The settings each materialization actually ran with, as its metadata records them, and how
they differ from params.yaml.

A launchpad override, a backfill with config or a `dvc exp` changes what an asset runs with
without changing params.yaml, and what runs below it later (the daemon, another terminal) must
be labelled with what produced its input. So every materialization records its own settings
and those of everything upstream of it as it resolved them, and the next one reads them from
there: from the latest materialization of the partition it reads (the same partition where both
are cut alike, else the latest of any partition). An asset never materialized (or materialized
before this record existed) stands for its Config defaults, params.yaml's values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:
    from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph

SETTINGS = "settings"  # metadata: {section: values} the materialization ran with
UPSTREAM_SETTINGS = "upstream_settings"  # metadata: {asset: {section: values}} above it
DIFFERS = "differs_from_params_yaml"  # metadata: what it ran with that params.yaml does not say
# a value longer than this is named, not shown, in a difference (the LMM prompts)
SHOWN_VALUE = 40

Lineage = dict[str, dict[str, Any]]  # asset name -> {section: values}


@dataclass(frozen=True)
class Record:
    """What one materialization ran with: its own settings and everything upstream of it."""

    settings: Mapping[str, Any]
    upstream: Mapping[str, Mapping[str, Any]]


class RecordedSettings:
    """Recorded settings in one instance, for the assets of one graph (each lookup made once)."""

    def __init__(self, instance: dg.DagsterInstance, graph: BaseAssetGraph) -> None:
        self.instance = instance
        self.graph = graph
        self._records: dict[tuple[dg.AssetKey, str | None], Record] = {}

    def record(self, key: dg.AssetKey, partition: str | None) -> Record:
        """The latest materialization of key (of that partition; of any when None), or its
        Config defaults and the same resolution upstream when it has none."""
        found = self._records.get((key, partition))
        if found is None:
            metadata = self._latest_metadata(key, partition)
            if SETTINGS in metadata and UPSTREAM_SETTINGS in metadata:
                found = Record(metadata[SETTINGS].value, metadata[UPSTREAM_SETTINGS].value)
            else:
                found = Record(config_defaults(self.graph, key), self.upstream(key, partition))
            self._records[(key, partition)] = found
        return found

    def upstream(self, key: dg.AssetKey, partition: str | None) -> Lineage:
        """Every asset upstream of key's materialization at partition, with the settings it
        ran with; a direct parent's own record wins over what an intermediate one recorded."""
        inherited: Lineage = {}
        direct: Lineage = {}
        for parent in sorted(self.graph.get(key).parent_keys, key=lambda k: k.path):
            if not self.graph.get(parent).is_materializable:
                continue  # the raw data: observed, no settings
            found = self.record(parent, self._partition_read(key, parent, partition))
            inherited.update({k: dict(v) for k, v in found.upstream.items()})
            direct[parent.to_user_string()] = dict(found.settings)
        lineage = {**inherited, **direct}
        return {name: lineage[name] for name in sorted(lineage)}

    def sections(self, asset: str, partition: str | None) -> dict[str, Mapping[str, Any]]:
        """Every params section that produced asset's materialization at partition: those of
        everything upstream (in asset order), then its own on top."""
        found = self.record(dg.AssetKey(asset), partition)
        merged: dict[str, Mapping[str, Any]] = {}
        for name in sorted(found.upstream):
            merged.update(found.upstream[name])
        merged.update(found.settings)
        return merged

    def drift(self, key: dg.AssetKey, found: Record) -> Drift:
        """How a record differs from params.yaml as the definitions were built."""
        upstream = {
            name: changes
            for name, settings in found.upstream.items()
            if (changes := differences(settings, config_defaults(self.graph, dg.AssetKey(name))))
        }
        return Drift(differences(found.settings, config_defaults(self.graph, key)), upstream)

    def _partition_read(
        self, child: dg.AssetKey, parent: dg.AssetKey, partition: str | None
    ) -> str | None:
        same = self.graph.get(parent).partitions_def == self.graph.get(child).partitions_def
        return partition if same else None

    def _latest_metadata(self, key: dg.AssetKey, partition: str | None) -> Mapping[str, Any]:
        if partition is None:
            event = self.instance.get_latest_materialization_event(key)
            found = event.asset_materialization if event is not None else None
        else:
            records = self.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
            ).records
            found = records[0].asset_materialization if records else None
        return found.metadata if found is not None else {}


@dataclass(frozen=True)
class Drift:
    """Settings a materialization ran with other than params.yaml's: its own ("rerank.eps_km
    20 ≠ 50") and, per upstream asset, what that one ran with ("rerank.eps_km 20")."""

    own: tuple[tuple[str, Any, Any], ...]
    upstream: Mapping[str, tuple[tuple[str, Any, Any], ...]]

    def __bool__(self) -> bool:
        return bool(self.own or self.upstream)

    def phrases(self) -> list[str]:
        """'rerank.eps_km 20 ≠ 50', then 'upstream rerank ran with rerank.eps_km 20'."""
        own = [", ".join(f"{k} {shown(ran)} ≠ {shown(default)}" for k, ran, default in self.own)]
        upstream = [
            f"upstream {name} ran with " + ", ".join(f"{k} {shown(ran)}" for k, ran, _ in changes)
            for name, changes in sorted(self.upstream.items())
        ]
        return (own if self.own else []) + upstream

    def text(self) -> str:
        """The metadata entry."""
        return "; ".join(self.phrases())

    def status_note(self) -> str:
        """What `geoloc status` adds to the asset's line."""
        phrases = self.phrases()
        if self.own:
            phrases[0] = f"differs from params.yaml: {phrases[0]}"
        return f"({'; '.join(phrases)})"


def differences(
    ran: Mapping[str, Any], defaults: Mapping[str, Any], prefix: str = ""
) -> tuple[tuple[str, Any, Any], ...]:
    """('section.key', ran, default) for every leaf whose value differs."""
    found: list[tuple[str, Any, Any]] = []
    for key in sorted(set(ran) | set(defaults)):
        value, default = ran.get(key), defaults.get(key)
        if isinstance(value, Mapping) and isinstance(default, Mapping):
            found += differences(value, default, f"{prefix}{key}.")
        elif value != default:
            found.append((f"{prefix}{key}", value, default))
    return tuple(found)


def shown(value: Any) -> str:
    """20.0 -> '20'; a long text -> its first characters."""
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    return text if len(text) <= SHOWN_VALUE else text[: SHOWN_VALUE - 1] + "…"


def config_defaults(graph: BaseAssetGraph, key: dg.AssetKey) -> Mapping[str, Any]:
    """An asset's Config defaults: its params.yaml sections as the definitions were built."""
    assets_def = graph.get(key).assets_def
    if not assets_def.is_executable:
        return {}  # a stub or an external asset: no settings of its own here
    schema = getattr(assets_def.node_def, "config_schema", None)
    if schema is None:
        return {}
    config = schema.as_field()
    default = config.default_value if config.default_provided else None
    return default if isinstance(default, Mapping) else {}


def recorded_metadata(settings: Mapping[str, Any], upstream: Lineage, drift: Drift) -> dict:
    """The entries a materialization records: what it ran with, and whether params.yaml says
    otherwise."""
    metadata: dict[str, Any] = {
        SETTINGS: dg.MetadataValue.json(dict(settings)),
        UPSTREAM_SETTINGS: dg.MetadataValue.json(upstream),
    }
    if drift:
        metadata[DIFFERS] = drift.text()
    return metadata
