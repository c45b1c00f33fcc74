"""What Dagster considers stale, asked the same way its UI asks, carried all the way down.

Dagster has no public call for this; the resolver below is the one behind the UI's "stale"
badges. It is wrapped here alone so a Dagster upgrade breaks one module, caught by a test.
Dagster's verdict is one level deep (after a model change only the model is stale until it is
re-materialized); here everything downstream of a stale or missing asset is reported stale
too, naming what it waits on, since its content will change when that one runs.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
    return carried_downstream(graph, states)


def carried_downstream(graph: Any, states: list[AssetState]) -> list[AssetState]:
    """States (in topological order) with every fresh one below a pending one made stale.

    An upstream of the same partitioning is matched partition by partition (candidates of
    demo-street wait on the demo-street manifest only); any other upstream as a whole.
    """
    pending_assets: dict[str, set[str | None]] = {}
    result: list[AssetState] = []
    for state in states:
        node = graph.get(dg.AssetKey.from_user_string(state.asset))
        if state.status == "fresh":
            waits = []
            for parent in node.parent_keys:
                name = parent.to_user_string()
                parts = pending_assets.get(name)
                if not parts:
                    continue
                same = graph.get(parent).partitions_def == node.partitions_def
                if not same or state.partition in parts:
                    waits.append(name)
            if waits:
                state = AssetState(
                    state.asset,
                    state.partition,
                    "stale",
                    tuple(f"{w}: upstream is stale or missing" for w in sorted(waits)),
                )
        if state.status != "fresh":
            pending_assets.setdefault(state.asset, set()).add(state.partition)
        result.append(state)
    return result
