"""An automation gate: an asset is requested only once everything upstream of it has settled.

Dagster orders the steps within one run, not across runs. Requested in one tick, a benchmark's
run and an unpartitioned step below it (the confidence radii over validation, the report over
every benchmark) ran side by side: the lower step read what the other run was rewriting, and
its own materialization, later than that update, counted as handling it, so nothing requested
it again and it stayed stale. Dagster's own `will_be_requested` cannot see this (it is false
for a dependency that runs in another run), and `any_deps_in_progress` sees only direct
dependencies. So the gate looks at every ancestor: none may be in progress (queued or running),
and none that reaches the asset through a step run apart may be requested in this tick. What
runs in the same run (one partition's chain of steps) still goes together.

It is Python, not one of Dagster's serializable conditions: the automation sensor evaluates it
in the code location (`use_user_code_server=True`), where the class exists.
"""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph import executable_in_same_run
from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph


def upstream(graph: BaseAssetGraph, key: dg.AssetKey) -> dict[dg.AssetKey, bool]:
    """Every materializable ancestor of key, and whether some path from it to key crosses a
    step that Dagster runs in another run (so a request of it this tick must come first)."""
    found: dict[dg.AssetKey, bool] = {}
    stack: list[tuple[dg.AssetKey, bool]] = [(key, False)]
    while stack:
        child, crossed = stack.pop()
        for parent in graph.get(child).parent_keys:
            if not graph.has(parent) or not graph.get(parent).is_materializable:
                continue
            apart = crossed or not executable_in_same_run(graph, child, parent)
            if parent in found and (found[parent] or not apart):
                continue  # already walked with at least this much crossing
            found[parent] = found.get(parent, False) or apart
            stack.append((parent, apart))
    return found


class UpstreamSettled(dg.AutomationCondition[dg.AssetKey]):
    """True when no ancestor is in progress and none reached through another run is requested
    in this tick (see the module's docstring)."""

    @property
    def name(self) -> str:
        return "upstream_settled"

    @property
    def description(self) -> str:
        return "Nothing upstream is in progress or requested in another run this tick"

    @property
    def requires_cursor(self) -> bool:
        return False

    async def evaluate(  # type: ignore[override]
        self, context: dg.AutomationContext[dg.AssetKey]
    ) -> dg.AutomationResult[dg.AssetKey]:
        view = context.asset_graph_view
        for ancestor, apart in upstream(context.asset_graph, context.key).items():
            requested = context.request_subsets_by_key.get(ancestor)
            if apart and requested is not None and not requested.is_empty:
                return dg.AutomationResult(context=context, true_subset=context.get_empty_subset())
            running = await view.compute_run_in_progress_subset(
                key=ancestor, from_subset=view.get_full_subset(key=ancestor)
            )
            if not running.is_empty:
                return dg.AutomationResult(context=context, true_subset=context.get_empty_subset())
        return dg.AutomationResult(context=context, true_subset=context.candidate_subset)
