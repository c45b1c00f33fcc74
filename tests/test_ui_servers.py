"""`make ui` and `make mlflow-ui` as a user runs them: in a real browser, a bad launchpad value
is refused at launch with params.yaml's line, and a launchpad override of one partition is
followed down by the daemon and recorded as what ran (MLflow, the report); a params.yaml edit
with the UI open is followed with no click; Ctrl-C or SIGTERM leaves no process behind within
10 s.

The recipes run through the real Makefile (`make -o install`: the environment is this one) in a
copy of the materialized tiny project, on free ports, with the project's own Dagster instance.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from mlflow.tracking import MlflowClient

from geoloc_assets.definitions import build_definitions
from geoloc_assets.runner import project_instance
from geoloc_assets.staleness import asset_states
from geoloc_assets.upstream_settled import upstream
from geoloc_core.params import ParamsError
from geoloc_core.params_check import validate_params
from geoloc_core.paths import ProjectPaths
from geoloc_core.pipeline.registry import downstream
from geoloc_core.processes import alive, descendants
from tests.asset_sets import stale_partitions_after
from tests.automation_ticks import ticks_until_quiet
from tests.browser import (
    REQUIRE_BROWSER_ENV,
    ServerFailed,
    browser_required,
    dagster_ready,
    free_port,
    headless_chromium,
    missing_browser,
    mlflow_ready,
    project_env,
    running_server,
    screenshot_dir,
)
from tests.conftest import BENCHMARKS, REPO
from tests.launchpad import materialize_from_launchpad, skip_dagster_welcome

MISSING_BROWSER = missing_browser()

SERVER_DEADLINE_S = 180.0
# How long a follow may take before the test calls it stuck. The bound (everything
# below the edit fresh within 3 min) is a speed goal, measured by benchmarks/ui_follow.py on the
# demo: here a neighbouring test's load on 2 cores counts as much as the code (one CI run
# took 181 s for a follow that takes 116-122 s on its own).
FOLLOW_DEADLINE_S = 480.0
STOP_DEADLINE_S = 10.0
POLL_S = 1.0
# The test instance's run queue is read every second (Dagster's default is every 5 s): a follow
# goes through four waves of queued runs, each waiting for the queue's next pass.
DEQUEUE_INTERVAL_S = 1
OVERRIDE_KM = 20.0  # the launchpad turns the re-rank on (DBSCAN at 20 km) for one partition
OVERRIDE_PARTITION = "validation"
NEW_EPS_KM = 5.0  # the params.yaml edit turns DBSCAN on at 5 km: the re-ranked order changes
def make_command(target: str, **variables: object) -> list[str]:
    """The Makefile's recipe for target, run in the current directory's project."""
    assigned = [f"{name}={value}" for name, value in variables.items()]
    return ["make", "--no-print-directory", "-f", str(REPO / "Makefile"), "-o", "install",
            target, *assigned]


def make_env(root: Path) -> dict[str, str]:
    """The project's environment, this interpreter's console scripts first on PATH (make puts
    the project's .venv/bin there, which a temp project has not)."""
    env = project_env(root)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


# Makefile target -> the variable that sets its port, and how to tell it answers
SERVED = {"ui": ("DAGSTER_PORT", dagster_ready), "mlflow-ui": ("MLFLOW_PORT", mlflow_ready)}


@contextmanager
def make_target_serving(target: str, cwd: Path, log: Path) -> Iterator[tuple[Any, str]]:
    """`make <target>` on a free port in cwd, once it answers: (its server, its URL)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    port_variable, ready = SERVED[target]
    command = make_command(target, **{port_variable: port})
    with running_server(command, cwd=cwd, env=make_env(cwd), log=log) as server:
        server.wait_ready(lambda: ready(url), SERVER_DEADLINE_S)
        yield server, url


def copy_project(template: Path, target: Path) -> Path:
    """A copy the servers may write into; pyproject.toml names the code location for
    `dagster dev`, as in the checkout."""
    shutil.copytree(template, target, ignore=shutil.ignore_patterns(".checkpoints"))
    shutil.copy(REPO / "pyproject.toml", target / "pyproject.toml")
    return target


def stop_and_count_survivors(process: subprocess.Popen, number: signal.Signals) -> list[str]:
    """Send the signal to make's process group (what Ctrl-C does in a terminal; SIGTERM as a
    supervisor sends it); the processes of the tree still running STOP_DEADLINE_S later."""
    tree = {process.pid: _start_ticks(process.pid), **descendants(process.pid)}
    os.killpg(process.pid, number)
    sent = time.monotonic()
    deadline = sent + STOP_DEADLINE_S
    while time.monotonic() < deadline:
        process.poll()
        if not any(alive(pid, started) for pid, started in tree.items()):
            print(f"\n{number.name}: {len(tree)} processes gone in {time.monotonic() - sent:.1f} s")
            return []
        time.sleep(0.2)
    return [
        f"{pid}: {_cmdline(pid)}" for pid, started in tree.items() if alive(pid, started)
    ]


def _start_ticks(pid: int) -> int:
    from geoloc_core.processes import process_stat

    stat = process_stat(pid)
    assert stat is not None
    return stat[1]


def _cmdline(pid: int) -> str:
    from geoloc_core.processes import command_line

    return " ".join(command_line(pid))[:160]


def materialization_counts(instance: dg.DagsterInstance, names: set[str]) -> Counter:
    counts: Counter = Counter()
    for name in names:
        records = instance.fetch_materializations(dg.AssetKey(name), limit=10_000).records
        counts.update((name, record.partition_key) for record in records)
    return counts


def params_line(eps_km: float) -> str:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["rerank"]["eps_km"] = eps_km
    with pytest.raises(ParamsError) as caught:
        validate_params(params)
    return str(caught.value)


def read_queue_every(home: Path, seconds: int) -> None:
    """Set the run queue's dequeue interval in the instance's dagster.yaml (its coordinator, the
    project's settings-checked one, kept)."""
    config_file = home / "dagster.yaml"
    config = yaml.safe_load(config_file.read_text())
    coordinator = config["run_coordinator"]
    settings = coordinator.get("config") or {}
    coordinator["config"] = {**settings, "dequeue_interval_seconds": seconds}
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture
def ui_project(materialized_template: Path, tmp_path: Path, monkeypatch) -> Path:
    root = copy_project(materialized_template, tmp_path / "project")
    read_queue_every(root / ".dagster", DEQUEUE_INTERVAL_S)
    monkeypatch.setenv("DAGSTER_HOME", str(root / ".dagster"))
    return root


@pytest.fixture
def make_ui(ui_project: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    with make_target_serving("ui", ui_project, tmp_path / "make-ui.log") as (server, url):
        yield server.process, url


def follow(
    root: Path,
    instance: dg.DagsterInstance,
    process: subprocess.Popen,
    names: set[str],
    before: Counter,
    expected: set[tuple[str, str | None]],
) -> tuple[set[tuple[str, str | None]], float]:
    """Wait, with no click, until everything expected has run and nothing is pending; what ran
    since `before`, and how long it took (printed: the goal is benchmarks/ui_follow.py's)."""
    started = time.monotonic()
    while True:
        now = materialization_counts(instance, names)
        ran = {key for key in now if now[key] > before[key]}
        if ran >= expected and not pending(root, instance):
            return ran, time.monotonic() - started
        if process.poll() is not None or time.monotonic() - started > FOLLOW_DEADLINE_S:
            raise AssertionError(
                f"after {time.monotonic() - started:.0f} s: still to run "
                f"{sorted(expected - ran, key=str)}, pending {pending(root, instance)}; "
                f"runs that did not succeed: {unsuccessful_runs(instance)}; "
                f"what the servers logged: {server_log_lines(root.parent / 'make-ui.log')}"
            )
        time.sleep(POLL_S)


def server_log_lines(log: Path, keep: int = 20) -> list[str]:
    """The last lines of `make ui`'s log that report a reload, an error or a failure."""
    if not log.is_file():
        return []
    marks = ("geoloc:", "error", "exception", "fail", "refused")
    lines = log.read_text(errors="replace").splitlines()
    return [line[:240] for line in lines if any(m in line.lower() for m in marks)][-keep:]


def unsuccessful_runs(instance: dg.DagsterInstance) -> list[str]:
    """Each run that failed or was canceled: its assets, partition and first error."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
        )
    )
    described = []
    for run in runs:
        failures = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        failures = failures or instance.all_logs(
            run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
        )
        message = failures[0].message[:300] if failures else run.status.value
        # what Dagster said about the run before it failed it (a launch or dequeue error, a
        # run process that died): the first lines of each engine event
        said = [
            (event.message or "").splitlines()[0][:200]
            for event in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
            if event.message
        ]
        assets = sorted(key.to_user_string() for key in run.asset_selection or ())
        described.append(
            f"{assets}[{run.tags.get('dagster/partition')}]: {message} (engine: {said})"
        )
    return described


def dependent_runs_side_by_side(root: Path, instance: dg.DagsterInstance) -> list[str]:
    """Runs that were running at the same time although one reads what the other writes: an
    asset of one upstream of an asset of the other, through a step run apart or in the same
    partition (the race the automation gate prevents: geoloc_assets/upstream_settled.py)."""
    graph = build_definitions(root).resolve_asset_graph()
    spans = []
    for record in instance.get_run_records():
        if record.start_time is None:
            continue  # refused before it started
        run = record.dagster_run
        end = record.end_time if record.end_time is not None else float("inf")
        spans.append((record.start_time, end, run.tags.get("dagster/partition"), run))
    found = []
    for first, second in itertools.combinations(spans, 2):
        if first[0] >= second[1] or second[0] >= first[1]:
            continue
        for lower, upper in ((first, second), (second, first)):
            written = upper[3].asset_selection or ()
            for key in lower[3].asset_selection or ():
                for above, apart in upstream(graph, key).items():
                    if above in written and (apart or lower[2] == upper[2]):
                        found.append(
                            f"{key.to_user_string()}[{lower[2]}] beside "
                            f"{above.to_user_string()}[{upper[2]}]"
                        )
    return found


def latest_mlflow_run(root: Path, asset: str, partition: str):
    client = MlflowClient(ProjectPaths(root).tracking_uri)
    experiment = client.get_experiment_by_name("geoloc").experiment_id
    query = f"tags.`dagster.asset_key` = '{asset}' and tags.`dagster.partition` = '{partition}'"
    return client.search_runs(
        [experiment], query, order_by=["attributes.start_time DESC"], max_results=1
    )[0]


def report_rows(root: Path, benchmark: str) -> str:
    """The report's re-ranked rows of one benchmark (the retrieval top-1 row shows a dash)."""
    report = (ProjectPaths(root).reports / "report.md").read_text()
    return "\n".join(
        line
        for line in report.splitlines()
        if f"metrics/{benchmark}.json" in line and "dbscan" in line
    )


def pending(root: Path, instance: dg.DagsterInstance) -> set[tuple[str, str | None]]:
    states = asset_states(build_definitions(root), instance, BENCHMARKS)
    return {(s.asset, s.partition) for s in states if s.status != "fresh"}


@pytest.mark.slow
def test_make_ui_follows_a_launchpad_override_and_a_params_edit_without_a_click(
    ui_project, make_ui, tmp_path
):
    """In a real browser on `make ui`: a bad launchpad value refused at launch; an override of
    one partition followed down by the daemon and recorded in MLflow and the report as the value
    that ran; then a params.yaml edit followed with no click."""
    if MISSING_BROWSER is not None:
        if browser_required():
            pytest.fail(f"{REQUIRE_BROWSER_ENV} is set, but {MISSING_BROWSER}")
        pytest.skip(str(MISSING_BROWSER))
    process, url = make_ui
    instance = project_instance(ui_project)
    graph_names = {
        key.to_user_string()
        for key in build_definitions(ui_project).resolve_asset_graph().materializable_asset_keys
    }
    shots = screenshot_dir()
    driver = headless_chromium()
    try:
        skip_dagster_welcome(driver, url)
        # the launchpad: a bad value is refused when launched, with params.yaml's line in the
        # launchpad's error dialog, before the run is queued: no step starts
        before = materialization_counts(instance, graph_names)
        runs_before = {run.run_id for run in instance.get_runs()}
        refused = materialize_from_launchpad(
            driver, url, "rerank", "validation", {"rerank": {"eps_km": -5.0}},
            shots / "launchpad-refused.png",
        )
        assert refused.error is not None and params_line(-5.0) in refused.error, refused
        new_runs = [run for run in instance.get_runs() if run.run_id not in runs_before]
        assert [run.status for run in new_runs] == [dg.DagsterRunStatus.FAILURE]
        assert not instance.all_logs(new_runs[0].run_id, of_type=dg.DagsterEventType.STEP_START)
        assert materialization_counts(instance, graph_names) == before

        # an override of one partition: the daemon follows it down, nothing else runs
        launched = materialize_from_launchpad(
            driver, url, "rerank", "validation",
            {"rerank": {"method": "dbscan", "eps_km": OVERRIDE_KM}},
            shots / "launchpad-override.png",
        )
        assert launched.run_id is not None, launched
    finally:
        driver.quit()
    # below rerank[validation]: that partition's steps, and every partition of the steps below
    # an unpartitioned one there (the confidence radii are calibrated on validation's decisions,
    # and every benchmark's verification applies them)
    after_rerank = stale_partitions_after("rerank", BENCHMARKS)
    fanned_out = downstream({asset for asset, partition in after_rerank if partition is None})
    below = {
        (asset, partition)
        for asset, partition in after_rerank
        if partition in (None, OVERRIDE_PARTITION) or asset in fanned_out
    }
    assert below >= {
        ("rerank", OVERRIDE_PARTITION), ("metrics", OVERRIDE_PARTITION), ("report", None)
    }
    ran, took = follow(ui_project, instance, process, graph_names, before, below)
    print(f"\nlaunchpad override followed down and fresh in {took:.0f} s")
    assert ran == below, f"ran besides what follows rerank[validation]: {sorted(ran - below)}"
    # MLflow and the report say what ran: the override, where params.yaml says otherwise
    metrics = latest_mlflow_run(ui_project, "metrics", OVERRIDE_PARTITION)
    assert metrics.data.params["rerank.eps_km"] == str(OVERRIDE_KM)
    assert metrics.data.tags["geoloc.rerank"] == f"dbscan-{OVERRIDE_KM:g}km"
    assert f"dbscan-{OVERRIDE_KM:g}km" in metrics.info.run_name
    assert f"dbscan eps {OVERRIDE_KM:g} km" in report_rows(ui_project, OVERRIDE_PARTITION)
    before = materialization_counts(instance, graph_names)

    # params.yaml edited with the UI open: no click, no reload by hand
    params_file = ui_project / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["rerank"].update(method="dbscan", eps_km=NEW_EPS_KM)  # params.yaml says none
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    expected = stale_partitions_after("rerank", BENCHMARKS)
    assert {asset for asset, _ in expected} >= {
        "rerank", "verification", "metrics", "report", "served_model"
    }
    ran, took = follow(ui_project, instance, process, graph_names, before, expected)
    print(f"\nparams.yaml edit followed down and fresh in {took:.0f} s")
    assert ran == expected, f"ran besides what follows the re-rank: {sorted(ran - expected)}"
    # no run ran beside a run of something upstream of it
    assert dependent_runs_side_by_side(ui_project, instance) == []

    assert stop_and_count_survivors(process, signal.SIGINT) == []


@pytest.mark.slow
def test_automation_requests_what_a_params_edit_changed_in_waves_then_nothing(ui_project):
    """Dagster's own evaluation of the automation condition, tick by tick, no run launched in
    between: a fresh instance's first tick requests nothing; after an eps edit (the reloaded
    definitions) the re-rank goes first, with what runs in its partition's run; nothing is
    requested in the tick of a step above it that runs in another run; then exactly what
    follows the re-rank has been requested, and the ticks fall quiet (no loop)."""
    instance = project_instance(ui_project)
    first = dg.evaluate_automation_conditions(defs=build_definitions(ui_project), instance=instance)
    assert first.total_requested == 0
    params_file = ui_project / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["rerank"]["eps_km"] = NEW_EPS_KM
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    defs = build_definitions(ui_project)
    graph = defs.resolve_asset_graph()
    ticks = ticks_until_quiet(defs, instance, first.cursor)
    assert {("rerank", b) for b in BENCHMARKS} <= ticks[0]
    assert not {asset for asset, _ in ticks[0]} & {"verification", "report", "served_model"}
    for number, wave in enumerate(ticks):
        names = {asset for asset, _ in wave}
        for asset in names:
            crossing = upstream(graph, dg.AssetKey(asset))
            beside = {other for other in names if crossing.get(dg.AssetKey(other))}
            assert not beside, f"tick {number}: {asset} beside {beside}, run apart above it"
    everything = set().union(*ticks)
    assert everything <= stale_partitions_after("rerank", BENCHMARKS)
    assert {(a, b) for a in ("rerank", "verification", "metrics") for b in BENCHMARKS} <= everything
    assert {("served_model", None), ("report", None)} <= everything


@pytest.mark.slow
def test_make_ui_stops_on_sigterm_with_every_process(tiny_project, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tiny_project / ".dagster"))
    shutil.copy(REPO / "pyproject.toml", tiny_project / "pyproject.toml")
    with make_target_serving("ui", tiny_project, tmp_path / "make-ui.log") as (server, _):
        assert stop_and_count_survivors(server.process, signal.SIGTERM) == []


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_make_mlflow_ui_stops_with_every_process(number, tmp_path):
    (tmp_path / "mlruns").mkdir()
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    with make_target_serving("mlflow-ui", tmp_path, tmp_path / "make-mlflow-ui.log") as (server, _):
        tree = descendants(server.process.pid)
        servers = [pid for pid in tree if "mlflow" in _cmdline(pid) or "uvicorn" in _cmdline(pid)]
        assert servers, "no mlflow process under make"
        assert not [pid for pid in tree if "huey" in _cmdline(pid)], "job runners started"
        assert stop_and_count_survivors(server.process, number) == []


def test_a_server_that_ignores_signals_is_killed_after_the_grace_period(tmp_path):
    """What `geoloc serve` does when the command (and a child in a session of its own) will not
    stop: both gone within the grace period and a little."""
    deaf = "import signal, time; [signal.signal(s, signal.SIG_IGN) for s in (2, 15)]; "
    script = (
        "import subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', '{deaf}time.sleep(600)'], "
        "start_new_session=True)\n"
        f"{deaf}time.sleep(600)\n"
    )
    env = {**make_env(tmp_path), "GEOLOC_STOP_GRACE_S": "1"}
    command = [str(Path(sys.executable).parent / "geoloc"), "--root", str(tmp_path), "serve",
               "--", sys.executable, "-c", script]
    with running_server(command, cwd=tmp_path, env=env, log=tmp_path / "serve.log") as server:
        deadline = time.monotonic() + 30
        while len(descendants(server.process.pid)) < 2:
            if time.monotonic() > deadline:
                raise ServerFailed((tmp_path / "serve.log").read_text())
            time.sleep(0.2)
        time.sleep(1.5)  # the supervisor records its tree once a second
        assert stop_and_count_survivors(server.process, signal.SIGTERM) == []


def eventually(condition, within_s: float = 20.0) -> bool:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_the_watcher_reloads_once_per_edit_and_waits_for_the_webserver(tmp_path):
    """Against a stand-in webserver: nothing before an edit; one reload per edit; an edit made
    while the webserver is down is reloaded once it answers, and said once meanwhile."""
    import http.server
    import threading

    from geoloc_assets.reload_watch import ReloadWatcher

    reloads: list[str] = []
    up = threading.Event()

    class Webserver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["query"]
            if not up.is_set():
                self.send_error(503)
                return
            reloads.append(query)
            body = {"data": {"reloadWorkspace": {"__typename": "Workspace", "locationEntries": []}}}
            self.send_response(200)
            self.end_headers()
            self.wfile.write(json.dumps(body).encode())

        def log_message(self, *args) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Webserver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    params = tmp_path / "params.yaml"
    params.write_text("rerank: {eps_km: 50}\n")
    said: list[str] = []
    url = f"http://127.0.0.1:{server.server_port}"
    watcher = ReloadWatcher(tmp_path, url, say=said.append, poll_s=0.1).start()
    try:
        time.sleep(0.5)
        assert reloads == []
        params.write_text("rerank: {eps_km: 30}\n")
        assert eventually(lambda: said), "the edit went unnoticed"
        time.sleep(0.5)  # a few more failed polls: still said once
        assert reloads == [] and len(said) == 1 and "did not reload yet" in said[0]
        up.set()
        assert eventually(lambda: reloads), "no reload once the webserver answered"
        assert len(reloads) == 1 and "reloadWorkspace" in reloads[0]
        assert said[-1] == "geoloc: params.yaml changed: code location reloaded"
    finally:
        watcher.stop()
        server.shutdown()
