"""The code location to serve next to a Ray cluster: the project's definitions, unchanged, with
every step of every run submitted as its own Ray job (dagster-ray's ray_executor, configured by
executor.yaml). Needs `pip install dagster-ray` (not a dependency of this project)."""

from pathlib import Path

import dagster as dg
import yaml
from dagster_ray import ray_executor

from geoloc_assets.definitions import location_definitions

EXECUTOR_CONFIG = Path(__file__).with_name("executor.yaml")


def ray_job_per_step_executor(config_file: Path = EXECUTOR_CONFIG) -> dg.ExecutorDefinition:
    return ray_executor.configured(yaml.safe_load(config_file.read_text()))


defs = location_definitions(executor=ray_job_per_step_executor())
