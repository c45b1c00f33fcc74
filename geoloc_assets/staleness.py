"""What Dagster considers stale, asked the same way its UI asks.

Dagster has no public call for this; the resolver below is the one behind the UI's "stale"
badges. It is wrapped here alone so a Dagster upgrade breaks one module, caught by a test.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.definitions.temporal_context import TemporalContext
from dagster._time import get_current_datetime

from geoloc_assets.runner import partitions_to_run


@dataclass(frozen=True)
class AssetState:
    asset: str
    partition: str | None
    status: str  # "fresh", "stale" or "missing"
    causes: tuple[str, ...]


def asset_states(
    defs: dg.Definitions, instance: dg.DagsterInstance, benchmarks: Sequence[str]
) -> list[AssetState]:
    graph = defs.resolve_asset_graph()
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=graph,
    )
    resolver = CachingStaleStatusResolver(
        instance=instance, asset_graph=graph, loading_context=view
    )
    states: list[AssetState] = []
    for key in graph.toposorted_asset_keys:
        node = graph.get(key)
        if not node.is_materializable:
            continue
        for partition in partitions_to_run(node.partitions_def, benchmarks):
            status = resolver.get_status(key, partition)
            causes = (
                tuple(
                    f"{c.key.asset_key.to_user_string()}: {c.reason}"
                    for c in resolver.get_stale_root_causes(key, partition)
                )
                if status == StaleStatus.STALE
                else ()
            )
            states.append(AssetState(key.to_user_string(), partition, status.value.lower(), causes))
    return states
