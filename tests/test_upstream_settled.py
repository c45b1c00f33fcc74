"""The automation gate (geoloc_assets/upstream_settled.py) on a small graph cut like the
project's: a, unpartitioned; b per partition; c, unpartitioned, over every b; d per partition,
reading its own b and c. Dagster runs one partition's b and d together but c apart, so d must
wait while b is requested, and everything waits while anything upstream is in progress."""

from __future__ import annotations

import dagster as dg
import pytest

from geoloc_assets.factory import AUTOMATION
from geoloc_assets.upstream_settled import upstream
from tests.automation_ticks import requested_pairs

PARTS = dg.StaticPartitionsDefinition(["p", "q"])


def toy_definitions(b_version: str = "1", d_version: str = "1") -> dg.Definitions:
    @dg.asset(automation_condition=AUTOMATION)
    def a() -> None: ...

    @dg.asset(
        deps=[a], partitions_def=PARTS, automation_condition=AUTOMATION, code_version=b_version
    )
    def b() -> None: ...

    @dg.asset(deps=[b], automation_condition=AUTOMATION)
    def c() -> None: ...

    @dg.asset(
        deps=[b, c], partitions_def=PARTS, automation_condition=AUTOMATION, code_version=d_version
    )
    def d() -> None: ...

    @dg.asset(deps=[d], partitions_def=PARTS, automation_condition=AUTOMATION)
    def e() -> None: ...

    return dg.Definitions(assets=[a, b, c, d, e])


@pytest.fixture
def materialized() -> tuple[dg.DagsterInstance, dg.Definitions]:
    instance = dg.DagsterInstance.ephemeral()
    defs = toy_definitions()
    assets = {asset.key.to_user_string(): asset for asset in defs.assets}
    dg.materialize([assets["a"]], instance=instance)
    for name in ("b", "c", "d", "e"):
        for partition in ["p", "q"] if name != "c" else [None]:
            dg.materialize([assets[name]], instance=instance, partition_key=partition)
    return instance, defs


def test_upstream_marks_what_reaches_the_asset_through_another_run():
    graph = toy_definitions().resolve_asset_graph()
    crossing = {}
    for name in "abcde":
        found = upstream(graph, dg.AssetKey(name))
        crossing[name] = {key.to_user_string(): apart for key, apart in found.items()}
    assert crossing["a"] == {}
    assert crossing["b"] == {"a": True}  # unpartitioned above partitioned: another run
    assert crossing["c"] == {"a": True, "b": True}
    # d reads its own b in the same run, but b also reaches it through c, run apart
    assert crossing["d"] == {"a": True, "b": True, "c": True}
    assert crossing["e"] == {"a": True, "b": True, "c": True, "d": False}


def test_a_step_below_another_run_waits_for_a_later_tick(materialized):
    instance, defs = materialized
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.total_requested == 0
    changed = toy_definitions(b_version="2")
    ticks, cursor = [], first.cursor
    for _ in range(5):
        tick = dg.evaluate_automation_conditions(defs=changed, instance=instance, cursor=cursor)
        cursor = tick.cursor
        ticks.append(requested_pairs(tick, changed))
    # b first; d (with e in d's run) not beside it: b reaches d through c, another run
    assert ticks[0] == {("b", "p"), ("b", "q")}
    # with nothing run in between (no update of b reaches c), d and e go on their own tick
    assert ticks[1] == {("d", "p"), ("d", "q"), ("e", "p"), ("e", "q")}
    assert ticks[2:] == [set(), set(), set()]


def test_nothing_below_a_step_in_progress_is_requested(materialized):
    instance, defs = materialized
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    job = defs.resolve_implicit_global_asset_job_def()
    planned = instance.create_run_for_job(
        job, asset_selection=frozenset({dg.AssetKey("b")}), tags={"dagster/partition": "p"}
    )
    changed = toy_definitions(d_version="2")
    tick = dg.evaluate_automation_conditions(defs=changed, instance=instance, cursor=first.cursor)
    assert requested_pairs(tick, changed) == set()  # d's code changed, but b[p] is planned above it
    instance.report_run_canceled(planned)
    tick = dg.evaluate_automation_conditions(defs=changed, instance=instance, cursor=tick.cursor)
    # the trigger waited; e runs in d's runs
    assert requested_pairs(tick, changed) == {("d", "p"), ("d", "q"), ("e", "p"), ("e", "q")}
