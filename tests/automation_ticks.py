"""Dagster's own evaluation of the automation conditions, tick by tick, for the tests that read
what each tick requests (no run is launched between ticks)."""

from __future__ import annotations

import dagster as dg

Requested = set[tuple[str, str | None]]


def requested_pairs(tick: dg.EvaluateAutomationConditionsResult, defs: dg.Definitions) -> Requested:
    """What the tick requested: (asset, partition), None for an unpartitioned asset."""
    return {
        (key.to_user_string(), partition)
        for key in defs.resolve_asset_graph().get_all_asset_keys()
        for partition in tick.get_requested_partitions(key)
    }


def ticks_until_quiet(
    defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None, limit: int = 8
) -> list[Requested]:
    """Each tick's requests from cursor on, up to and including the first that requests
    nothing; more than limit ticks is a loop and fails."""
    ticks: list[Requested] = []
    while not ticks or ticks[-1]:
        assert len(ticks) < limit, f"still requesting after {len(ticks)} ticks: {ticks}"
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        cursor = tick.cursor
        ticks.append(requested_pairs(tick, defs))
    return ticks
