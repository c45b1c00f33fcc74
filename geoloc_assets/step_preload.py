"""What a run's forkserver imports before it forks the run's steps: the code location.

Dagster's multiprocess executor preloads the job's module in its forkserver only when the
config names no modules, and its config parser turns "none named" into an empty list, so with
`forkserver: {}` only Dagster itself was preloaded and every step re-imported the project
(about 4.5 s of a step's start on 2 cores, seven times on the way down from a re-rank edit).
The executor's config names this module instead. It loads the code location once per run, in
the forkserver, and each step forked from it starts with the definitions built.

A code location that cannot load (params.yaml edited into an error while a run was under way)
is left out here rather than raised: the forkserver would die with it and each step would fail
with a broken pipe, where importing it in the step reports the setting's own line.
"""

from __future__ import annotations

import importlib
import os

LOADED_IN_PID: int | None = None  # the process that loaded the code location here, if it did

try:
    from geoloc_assets.runner import CODE_LOCATION

    importlib.import_module(CODE_LOCATION[0])
    LOADED_IN_PID = os.getpid()
except Exception:  # reported by the step that imports it again (the docstring)
    pass
