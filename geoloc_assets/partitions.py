"""How the work is cut and shared out: benchmarks are partitions, and the steps that use a GPU
share one Dagster concurrency pool.

The partitions are the configured params benchmarks.names, so the UI never shows a benchmark
the project does not evaluate as missing. `validation` (the reference source's held-out split)
is evaluated like any benchmark: settings are tuned there, never on a test benchmark. (Image
shards are partitions too: see feature_shard_partitions and the segmentation assets.)

The GPU steps carry the pool and, for running the same partitions on a cluster, the per-step
GPU request of Kubernetes (dagster-k8s) and Ray (dagster-ray); locally those tags do nothing.
"""

from collections.abc import Sequence
from typing import Any

import dagster as dg

from geoloc_core.data.sources import BENCHMARK_SOURCES

KNOWN_BENCHMARKS = tuple(BENCHMARK_SOURCES)
# Every known benchmark: for stand-in assets in tests that need no params.
benchmark_partitions = dg.StaticPartitionsDefinition(list(KNOWN_BENCHMARKS))

# The pool of every step that runs a model on the GPU when one is present; the instance limits
# it to the number of GPUs (geoloc_assets.runner.gpu_pool_limit).
GPU_POOL = "gpu"
K8S_CONFIG_TAG = "dagster-k8s/config"
RAY_CONFIG_TAG = "dagster-ray/config"
GPU_RESOURCE = "nvidia.com/gpu"
# GPU node pools usually carry this taint, so that only pods that ask for GPUs land there.
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}


def gpu_step_tags(gpus: int = 1) -> dict[str, Any]:
    """The op tags that ask a cluster for the step's GPUs: one for most steps, train.devices
    for training under torchrun (one pod, one process a GPU); none when it uses no GPU."""
    if gpus < 1:
        return {}
    count = str(gpus)
    k8s = {
        "container_config": {
            "resources": {"requests": {GPU_RESOURCE: count}, "limits": {GPU_RESOURCE: count}}
        },
        "pod_spec_config": {"tolerations": [GPU_TOLERATION]},
    }
    return {K8S_CONFIG_TAG: k8s, RAY_CONFIG_TAG: {"num_gpus": gpus}}


def configured_benchmarks(names: Sequence[str]) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(list(names))


def is_benchmark_partitioning(partitions_def: dg.PartitionsDefinition | None) -> bool:
    if not isinstance(partitions_def, dg.StaticPartitionsDefinition):
        return False
    return set(partitions_def.get_partition_keys()) <= set(KNOWN_BENCHMARKS)
