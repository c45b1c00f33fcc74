"""Reload the Dagster code location when params.yaml or the project's code changes.

The definitions (each asset's Config defaults and code version) are built from params.yaml
when the code location loads, so an edit shows in the UI, and reaches the daemon's automation,
only after a reload. `make ui` runs this watcher beside `dagster dev`: it polls the files'
modification times and asks the webserver to reload through its GraphQL API (the mutation
behind the UI's "Reload definitions"); the daemon follows the new code server by itself.
Dagster is not imported here: the request is plain HTTP.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from geoloc_core.params import PARAMS_FILE

PACKAGES = ("geoloc_core", "geoloc_assets")
# an editor writes a file in several steps: a reload waits for one poll that finds nothing new
POLL_S = 1.0
RELOAD_TIMEOUT_S = 120.0
RELOAD_MUTATION = (
    "mutation { reloadWorkspace { __typename "
    "... on Workspace { locationEntries { name locationOrLoadError { __typename "
    "... on PythonError { message } } } } "
    "... on PythonError { message } } }"
)


def watched_files(root: Path) -> list[Path]:
    """params.yaml and every Python file of the project's packages (where they are installed
    from: the checkout with an editable install)."""
    files = [root / PARAMS_FILE]
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            files += sorted(Path(folder).rglob("*.py"))
    return files


def snapshot(files: list[Path]) -> dict[Path, int]:
    """Modification time of each file (-1 when it is missing)."""
    stamps: dict[Path, int] = {}
    for path in files:
        try:
            stamps[path] = path.stat().st_mtime_ns
        except OSError:
            stamps[path] = -1
    return stamps


def reload_workspace(webserver_url: str) -> str:
    """Ask the webserver to reload its code locations; what it answered, in one line.
    Raises OSError while the webserver does not answer."""
    request = urllib.request.Request(
        f"{webserver_url.rstrip('/')}/graphql",
        data=json.dumps({"query": RELOAD_MUTATION}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=RELOAD_TIMEOUT_S) as reply:
        answer = json.loads(reply.read())["data"]["reloadWorkspace"]
    if answer["__typename"] != "Workspace":
        return f"reload refused: {answer.get('message', answer['__typename'])}"
    errors = [
        f"{entry['name']}: {entry['locationOrLoadError'].get('message', '').strip()}"
        for entry in answer["locationEntries"]
        if (entry.get("locationOrLoadError") or {}).get("__typename") == "PythonError"
    ]
    return "; ".join(errors) if errors else "code location reloaded"


class ReloadWatcher:
    """Polls the watched files in a thread of its own; after a change (once the files are quiet)
    reloads the code location, retrying while the webserver is not up yet."""

    def __init__(
        self,
        root: Path,
        webserver_url: str,
        say: Callable[[str], None] = print,
        poll_s: float = POLL_S,
    ) -> None:
        self.root = root
        self.webserver_url = webserver_url
        self.say = say
        self.poll_s = poll_s
        self._waiting = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="geoloc-reload", daemon=True)

    def start(self) -> ReloadWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        stamps = snapshot(watched_files(self.root))
        changed: list[str] = []
        while not self._stop.wait(self.poll_s):
            now = snapshot(watched_files(self.root))
            moved = [p for p in now.keys() | stamps.keys() if now.get(p) != stamps.get(p)]
            stamps = now
            if moved:
                changed += [self._name(path) for path in moved]
                continue  # still being written: wait until a poll finds nothing new
            if changed:
                changed = [] if self._reload(sorted(set(changed))) else changed

    def _reload(self, changed: list[str]) -> bool:
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        shown = ", ".join(changed[:3]) + more
        try:
            outcome = reload_workspace(self.webserver_url)
        except (OSError, KeyError, TypeError, ValueError) as exc:
            if not self._waiting:  # said once; retried every poll until the webserver answers
                self.say(f"geoloc: {shown} changed; the webserver did not reload yet ({exc})")
            self._waiting = True
            return False
        self._waiting = False
        self.say(f"geoloc: {shown} changed: {outcome}")
        return True

    def _name(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return path.name
