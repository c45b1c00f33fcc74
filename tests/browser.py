"""Servers and a headless Chromium for the UI tests (tests/test_ui_browser.py).

The servers run as their own process groups on 127.0.0.1 and free ports, are ready when an HTTP
endpoint says so (polled against a deadline), and are always stopped with their children.
Selenium Manager cannot download drivers offline, so Debian's chromium and chromedriver are
named explicitly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

REPO = Path(__file__).resolve().parent.parent
SCREENSHOTS_ENV = "GEOLOC_UI_SCREENSHOTS"
# set by .ci/run: a missing browser fails the UI tests there instead of skipping them
REQUIRE_BROWSER_ENV = "GEOLOC_REQUIRE_BROWSER"
DEBIAN_CHROMIUM = "/usr/bin/chromium"
DEBIAN_CHROMEDRIVER = "/usr/bin/chromedriver"
WINDOW = (1920, 1400)
POLL_S = 0.25
STOP_GRACE_S = 10.0
DAGSTER_WORKSPACE_QUERY = (
    "{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus "
    "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
)


class ServerFailed(RuntimeError):
    """A server exited or never became ready; the message ends with its log."""


def chromium_binary() -> str | None:
    return shutil.which("chromium") or _existing(DEBIAN_CHROMIUM)


def chromedriver_binary() -> str | None:
    return shutil.which("chromedriver") or _existing(DEBIAN_CHROMEDRIVER)


def _existing(path: str) -> str | None:
    return path if Path(path).is_file() else None


def missing_browser() -> str | None:
    """Why no browser can run here (None when chromium and chromedriver are both present)."""
    found = {"chromium": chromium_binary(), "chromedriver": chromedriver_binary()}
    missing = [name for name, path in found.items() if path is None]
    if not missing:
        return None
    return (
        f"{' and '.join(missing)} not installed; on Debian/Ubuntu: "
        "apt-get install -y chromium chromium-driver (see docs/ui-tests.md)"
    )


def browser_required() -> bool:
    return os.environ.get(REQUIRE_BROWSER_ENV, "") not in ("", "0")


def screenshot_dir() -> Path:
    """$GEOLOC_UI_SCREENSHOTS, else <repo>/.ui-screenshots: outside pytest's temp folders, so the
    pictures survive the run."""
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or REPO / ".ui-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def headless_chromium() -> webdriver.Chrome:
    """One headless Chromium through Debian's chromedriver, at a size that fits the asset graph
    and its sidebar."""
    options = webdriver.ChromeOptions()
    options.binary_location = chromium_binary() or DEBIAN_CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ):
        options.add_argument(argument)
    service = Service(executable_path=chromedriver_binary() or DEBIAN_CHROMEDRIVER)
    return webdriver.Chrome(service=service, options=options)


def free_port() -> int:
    """A port nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def venv_command(name: str) -> str:
    """A console script of the interpreter running the tests (the project's .venv)."""
    return str(Path(sys.executable).parent / name)


def dagster_webserver_command(port: int) -> list[str]:
    return [
        venv_command("dagster-webserver"),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-m",
        "geoloc_assets.definitions",
        "--read-only",  # the tests look; nothing they click may launch a run
    ]


def mlflow_server_command(root: Path, port: int) -> list[str]:
    """What `make mlflow-ui` serves (the project's sqlite store), with one worker for 2 cores."""
    return [
        venv_command("mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlruns' / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "mlruns" / "artifacts"),
    ]


def project_env(root: Path) -> dict[str, str]:
    """The environment `make ui` gives the code location, pointed at the project at root."""
    env = {k: v for k, v in os.environ.items() if k not in ("DVC_ROOT", "MLFLOW_TRACKING_URI")}
    env["GEOLOC_ROOT"] = str(root)
    env["DAGSTER_HOME"] = str(root / ".dagster")
    return env


def http_get(url: str, timeout: float = 5.0) -> bytes | None:
    """The body of a 200 answer, None while the server cannot answer yet."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.read() if answer.status == 200 else None
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def mlflow_ready(base_url: str) -> bool:
    return http_get(f"{base_url}/health") is not None


def dagster_ready(base_url: str) -> bool:
    """True once every code location is loaded; a location that failed to load raises, so the
    test stops at once with the loader's message."""
    request = urllib.request.Request(
        f"{base_url}/graphql",
        data=json.dumps({"query": DAGSTER_WORKSPACE_QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5.0) as answer:
            workspace = json.load(answer)["data"]["workspaceOrError"]
    except (urllib.error.URLError, ConnectionError, TimeoutError, KeyError, ValueError):
        return False
    entries = workspace.get("locationEntries") or []
    for entry in entries:
        loaded = entry.get("locationOrLoadError") or {}
        if loaded.get("__typename") == "PythonError":
            raise ServerFailed(f"code location {entry['name']} failed: {loaded['message']}")
    return bool(entries) and all(
        e["loadStatus"] == "LOADED"
        and (e.get("locationOrLoadError") or {}).get("__typename") == "RepositoryLocation"
        for e in entries
    )


def wait_until_ready(
    ready: Callable[[], bool], process: subprocess.Popen, deadline_s: float, log: Path
) -> None:
    """Poll ready() until it holds; fail as soon as the server exits or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while not ready():
        if process.poll() is not None:
            raise ServerFailed(f"exited with {process.returncode}\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise ServerFailed(f"not ready after {deadline_s:.0f} s\n{_tail(log)}")
        time.sleep(POLL_S)


def _tail(log: Path, lines: int = 40) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM to the server and its children (uvicorn workers, Dagster's code server), SIGKILL
    after a grace period."""
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_GRACE_S)
    # children may outlive a leader that exited on its own
    _signal_group(process, signal.SIGKILL)
    process.wait()


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


@dataclass(frozen=True)
class Server:
    process: subprocess.Popen
    log: Path

    def wait_ready(self, ready: Callable[[], bool], deadline_s: float) -> None:
        wait_until_ready(ready, self.process, deadline_s, self.log)


@contextmanager
def running_server(
    command: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path
) -> Iterator[Server]:
    """A server started in its own process group and stopped, with its children, whatever
    happens; waiting for it is the caller's (two servers can start side by side)."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        yield Server(process, log)
    finally:
        stop_process_group(process)
