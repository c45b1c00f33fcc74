"""The code location to serve on Kubernetes: the project's definitions, unchanged, with every
step of every run in its own pod (dagster-k8s's k8s_job_executor, configured by executor.yaml).

The user deployment in values.yaml serves this file (`dagster api grpc -f .../definitions.py`);
runs are launched by the K8sRunLauncher, and a backfill over the shard partitions becomes one
run per shard, each spreading its steps over pods, the GPU steps on GPU nodes.
"""

from pathlib import Path

import dagster as dg
import yaml
from dagster_k8s import k8s_job_executor

from geoloc_assets.definitions import location_definitions

EXECUTOR_CONFIG = Path(__file__).with_name("executor.yaml")


def pod_per_step_executor(config_file: Path = EXECUTOR_CONFIG) -> dg.ExecutorDefinition:
    return k8s_job_executor.configured(yaml.safe_load(config_file.read_text()))


defs = location_definitions(executor=pod_per_step_executor())
