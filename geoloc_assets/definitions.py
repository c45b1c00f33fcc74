"""The Dagster code location: every asset, check and resource, built from params.yaml."""

import os
import warnings
from pathlib import Path

import dagster as dg

from geoloc_assets.executor import LOCAL_EXECUTOR
from geoloc_assets.factory import build_assets
from geoloc_assets.resources import MlflowTracker, ProjectResource
from geoloc_core.params import PARAMS_FILE, ParamsError, find_root, load_params
from geoloc_core.params_check import validate_params
from geoloc_core.paths import ProjectPaths

AUTOMATION_SENSOR = "geoloc_automation"
# Dagster's default is 30 s. Following an edit down takes four ticks here (each step waits for
# the runs upstream of it: upstream_settled.py): the benchmarks' re-rank, the confidence radii,
# the benchmarks' verification, then the report and the served model, so the wait for ticks
# adds up. An evaluation of this graph costs 0.2-0.5 s of CPU (4-10 % of a core at 5 s).
AUTOMATION_INTERVAL_S = 5


def build_definitions(
    root: Path, executor: dg.ExecutorDefinition = LOCAL_EXECUTOR
) -> dg.Definitions:
    """Definitions for the project at root (the tests build them for a temp project), run by
    executor (a deployment passes its own)."""
    root = Path(root).resolve()
    params = load_params(root)
    validate_params(params)
    paths = ProjectPaths(root)
    everything = build_assets(params)
    assets = [a for a in everything if not isinstance(a, dg.AssetChecksDefinition)]
    checks = [a for a in everything if isinstance(a, dg.AssetChecksDefinition)]
    tracking = params["tracking"]
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        executor=executor,
        sensors=[automation_sensor()],
        resources={
            "project": ProjectResource(root=str(root)),
            "mlflow_tracker": MlflowTracker(
                tracking_uri=os.environ.get("MLFLOW_TRACKING_URI", paths.tracking_uri),
                artifact_root=str(paths.mlruns / "artifacts"),
                experiment=tracking["experiment"],
                ui_url=tracking["ui_url"],
            ),
        },
    )


def automation_sensor() -> dg.AutomationConditionSensorDefinition:
    """Evaluates the assets' automation conditions; on by default, so `make ui` (dagster dev,
    with its daemon) follows a changed asset all the way down."""
    with warnings.catch_warnings():
        # use_user_code_server is Dagster's beta; the gate needs it (below), said once here
        # rather than warned on every load of the definitions
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.AutomationConditionSensorDefinition(
            AUTOMATION_SENSOR,
            target=dg.AssetSelection.all(),
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=AUTOMATION_INTERVAL_S,
            # a run per partition at once; as a backfill they would wait for the backfill
            # daemon's next pass (every 30 s), twice on the way to the report
            emit_backfills=False,
            # evaluated in the code location: the conditions hold a Python class of ours
            # (upstream_settled.UpstreamSettled) that Dagster's daemon cannot load
            use_user_code_server=True,
        )


def _default_root() -> Path:
    """$GEOLOC_ROOT, else the working directory's project, else this package's checkout."""
    try:
        return find_root()
    except ValueError:
        return find_root(Path(__file__).resolve().parent.parent)


def _load(root: Path, executor: dg.ExecutorDefinition = LOCAL_EXECUTOR) -> dg.Definitions:
    """The code location; a bad setting surfaces as its one line, without the stack of the
    parsers that found it (the UI shows it as the location's load error)."""
    try:
        return build_definitions(root, executor)
    except ParamsError as exc:
        raise ParamsError(str(exc)).with_traceback(None) from None


def _params_bytes(root: Path) -> bytes:
    return (root / PARAMS_FILE).read_bytes()


_LOCATION_ROOT = _default_root().resolve()
_LOCATION_PARAMS = _params_bytes(_LOCATION_ROOT)
defs = _load(_LOCATION_ROOT)


def location_definitions(executor: dg.ExecutorDefinition) -> dg.Definitions:
    """The code location's definitions run by another executor: what a deployment serves."""
    return _load(_LOCATION_ROOT, executor)


def definitions_for(root: Path) -> dg.Definitions:
    """The code location's definitions when they were built from root's current params.yaml
    (the CLI in a project), else a fresh build: a command builds the graph once, not twice."""
    root = Path(root).resolve()
    if root == _LOCATION_ROOT and _params_bytes(root) == _LOCATION_PARAMS:
        return defs
    return build_definitions(root)
