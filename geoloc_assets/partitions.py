"""Benchmarks are partitions: each evaluated, tracked and re-run on its own.

The partitions are the configured params benchmarks.names, so the UI never shows a benchmark
the project does not evaluate as missing. `validation` (the reference source's held-out split)
is evaluated like any benchmark: settings are tuned there, never on a test benchmark.
"""

from collections.abc import Sequence

import dagster as dg

from geoloc_core.data.sources import BENCHMARK_SOURCES

KNOWN_BENCHMARKS = tuple(BENCHMARK_SOURCES)
# Every known benchmark: for stand-in assets in tests that need no params.
benchmark_partitions = dg.StaticPartitionsDefinition(list(KNOWN_BENCHMARKS))


def configured_benchmarks(names: Sequence[str]) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(list(names))


def is_benchmark_partitioning(partitions_def: dg.PartitionsDefinition | None) -> bool:
    if not isinstance(partitions_def, dg.StaticPartitionsDefinition):
        return False
    return set(partitions_def.get_partition_keys()) <= set(KNOWN_BENCHMARKS)
