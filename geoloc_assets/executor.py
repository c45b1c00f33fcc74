"""The executor of the code location's runs: the launchpad's, the automation sensor's, backfills.

Dagster's default executor starts each step of a run by spawning a fresh interpreter, which
imports Dagster, torch, MLflow and the project again and rebuilds the definitions: about 5 s a
step on 2 cores, far more than the step itself for most of the graph (a re-rank, a verification,
the metrics), and a run that follows an edit down has several such steps. Here the default start
method is forkserver, as for `geoloc materialize --parallel`: one process per run loads the code
location once (step_preload.py, named explicitly: Dagster preloads nothing of the project when
the config names no module), and each step is forked from it. The config schema is Dagster's
own, so any run config that chooses a start method, or `in_process`, still applies. A
deployment replaces this executor with its own (deploy/k8s, deploy/ray).
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg

# Dagster's own module goes first in any case (its multiprocess executor adds it)
FORKSERVER = {"forkserver": {"preload_modules": ["geoloc_assets.step_preload"]}}


def forkserver_unless_chosen(config: Mapping[str, Any]) -> dict[str, Any]:
    """The default executor's config, multiprocess with forkserver when no start method is set."""
    multiprocess = config.get("multiprocess")
    if multiprocess is None or multiprocess.get("start_method"):
        return dict(config)
    return {**config, "multiprocess": {**multiprocess, "start_method": FORKSERVER}}


LOCAL_EXECUTOR = dg.multi_or_in_process_executor.configured(
    forkserver_unless_chosen,
    config_schema=dg.multi_or_in_process_executor.config_schema.as_field(),
)
