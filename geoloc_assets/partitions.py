"""Benchmarks are partitions: each evaluated, tracked and re-run on its own."""

import dagster as dg

KNOWN_BENCHMARKS = ("demo-street", "demo-unseen", "im2gps3k", "yfcc4k")
benchmark_partitions = dg.StaticPartitionsDefinition(list(KNOWN_BENCHMARKS))
