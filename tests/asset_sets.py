"""What a settings change must mark stale, derived from the stage registry (the steps that read
the section and every step below them), never from a hand-written list."""

from __future__ import annotations

from collections.abc import Sequence

from geoloc_core.pipeline.registry import BENCHMARK, STAGES, downstream, readers


def stale_after(section: str) -> set[str]:
    """The steps a change to a params section re-runs."""
    return downstream(readers(section))


def stale_partitions_after(
    section: str, benchmarks: Sequence[str]
) -> set[tuple[str, str | None]]:
    """The same, each step in its partitions (benchmark steps once per benchmark)."""
    cut = {stage.name: stage.partitioning for stage in STAGES}
    return {
        (name, partition)
        for name in stale_after(section)
        for partition in (benchmarks if cut[name] == BENCHMARK else [None])
    }


# a model or training setting: re-training and everything after it, never the backbone
BELOW_MODEL = frozenset(stale_after("model"))
# an LMM setting: the LMM steps and everything that reads their answers
BELOW_LMM = frozenset(stale_after("lmm"))
