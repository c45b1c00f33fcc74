"""DVC's locks bind `geoloc` commands too: one started by hand beside a running `dvc repro` is
refused, a `dvc repro` beside a hand-started one is refused by DVC itself, and one that a DVC
stage runs goes ahead. Real git and DVC in temp repositories; every wait is for a marker file
that the blocked side creates, never a guessed sleep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from geoloc_assets.cli import materialize_outputs
from geoloc_core.dvc_lock import DvcLockError, dvc_write_lock
from tests.test_tooling import dvc_executable, dvc_git_env

BIN = Path(sys.executable).parent
WAIT_SECONDS = 120
# a stage command that writes its out, then holds until the test releases it
HOLD_SCRIPT = """\
import sys, time
from pathlib import Path

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
(out / "done.txt").write_text("done\\n")
Path("stage-held").touch()
while not Path("stage-release").exists():
    time.sleep(0.05)
"""
# DVC's own repository lock (dvc/lock.py), taken and held the way every dvc command takes it
REPO_LOCK_SCRIPT = """\
import sys, time
from pathlib import Path
from dvc.lock import make_lock

lock = make_lock(".dvc/tmp/lock")
lock.lock()
Path("repo-locked").touch()
while not Path("repo-release").exists():
    time.sleep(0.05)
lock.unlock()
"""


def stage_yaml(name: str, cmd: str, deps: list[str], out: str) -> str:
    listed = "".join(f"      - {d}\n" for d in deps)
    return (
        f"stages:\n  {name}:\n    cmd: {cmd}\n    deps:\n{listed}"
        f"    outs:\n      - {out}:\n          persist: true\n"
    )


@pytest.fixture
def repo(tiny_project: Path) -> Path:
    """The tiny project as a git + DVC repository, with the holding stage's script."""
    (tiny_project / "hold.py").write_text(HOLD_SCRIPT)
    for args in (["git", "init", "-q"], [dvc_executable(), "init", "-q"]):
        subprocess.run(args, cwd=tiny_project, env=env_for(tiny_project), check=True)
    return tiny_project


def env_for(root: Path, **extra: str) -> dict[str, str]:
    env = dvc_git_env(
        PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
        GEOLOC_ROOT=str(root),
        DAGSTER_HOME=str(root / ".dagster"),
        PYTHONDONTWRITEBYTECODE="1",
        **extra,
    )
    for name in ("DVC_ROOT", "DVC_STAGE"):  # this test process is no stage's command
        env.pop(name, None)
    return env


def dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [dvc_executable(), *args],
        cwd=root,
        env=env_for(root),
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
    )


def geoloc(root: Path, *args: str, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "geoloc"), "--root", str(root), *args],
        cwd=root,
        env=env_for(root, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(marker: Path, process: subprocess.Popen) -> None:
    """Until process has created marker; fail at once if it ended without."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not marker.exists():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"{process.args} ended ({process.returncode}) first:\n{out}\n{err}")
        assert time.monotonic() < deadline, f"{marker} never appeared"
        time.sleep(0.05)


def rwlock(root: Path) -> dict:
    path = root / ".dvc" / "tmp" / "rwlock"
    return json.loads(path.read_text()) if path.exists() else {}


def pids_in(lock: dict) -> set[int]:
    readers = [info for infos in lock.get("read", {}).values() for info in infos]
    return {info["pid"] for info in [*lock.get("write", {}).values(), *readers]}


def held_geoloc(root: Path) -> subprocess.Popen:
    """A hand-started `geoloc materialize`, stopped just after it took DVC's lock."""
    marker = root / "geoloc-held"
    process = geoloc(
        root,
        "materialize",
        "--group",
        "data",
        GEOLOC_TEST_KILL_POINT="dvc-lock-held:1",
        GEOLOC_TEST_KILL_MARKER=str(marker),
    )
    wait_for(marker, process)
    return process


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()  # reaped: its pid no longer exists


def test_hand_started_materialize_is_refused_while_dvc_repro_runs_a_stage(repo):
    (repo / "dvc.yaml").write_text(
        stage_yaml("held", "python hold.py artifacts/held", ["hold.py"], "artifacts/held")
    )
    repro = subprocess.Popen(
        [dvc_executable(), "repro"],
        cwd=repo,
        env=env_for(repo),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(repo / "stage-held", repro)
        refused = geoloc(repo, "materialize", "--group", "data")
        out, err = refused.communicate(timeout=WAIT_SECONDS)
        assert refused.returncode == 2, out + err
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("geoloc: error: DVC is busy with this project: ")
        assert f"PID {repro.pid} (" in lines[0] and " repro)" in lines[0]
        assert "wait for it to finish" in lines[0]
        assert not (repo / "artifacts" / "manifests").exists()  # it did no work
        assert pids_in(rwlock(repo)) == {repro.pid}  # and took no lock
    finally:
        (repo / "stage-release").touch()
        output, _ = repro.communicate(timeout=WAIT_SECONDS)
    assert repro.returncode == 0, output
    assert "Running stage 'held'" in output


def test_hand_started_materialize_is_refused_while_dvc_holds_the_repository_lock(repo):
    dvc_python = Path(os.path.realpath(dvc_executable())).parent / "python"
    holder = subprocess.Popen([str(dvc_python), "-c", REPO_LOCK_SCRIPT], cwd=repo)
    try:
        wait_for(repo / "repo-locked", holder)
        refused = geoloc(repo, "materialize", "--group", "data")
        _, err = refused.communicate(timeout=WAIT_SECONDS)
        assert refused.returncode == 2, err
        assert len(err.strip().splitlines()) == 1, err
        assert f"PID {holder.pid} ({dvc_python} -c" in err
        assert "holds the repository lock (.dvc/tmp/lock); wait for it to finish" in err
    finally:
        (repo / "repo-release").touch()
        holder.wait(timeout=WAIT_SECONDS)
    with dvc_write_lock(repo, materialize_outputs(repo)):  # released: the next one goes ahead
        pass


def test_dvc_repro_is_refused_while_a_hand_started_materialize_runs_until_it_is_killed(repo):
    (repo / "stage-release").touch()  # the stage runs straight through
    (repo / "dvc.yaml").write_text(
        stage_yaml("quick", "python hold.py artifacts/quick", ["hold.py"], "artifacts/quick")
    )
    running = held_geoloc(repo)
    try:
        busy = dvc(repo, "repro")
        assert busy.returncode != 0, busy.stdout + busy.stderr
        assert "is busy, it is being blocked by:" in busy.stderr
        assert f"(PID {running.pid}): geoloc --root {repo} materialize --group data" in busy.stderr
        assert not (repo / "artifacts" / "quick").exists()
        entry = rwlock(repo)["write"][str(repo / "artifacts")]
        command = f"geoloc --root {repo} materialize --group data"
        assert entry == {"pid": running.pid, "cmd": command}
    finally:
        kill(running)
    # a SIGKILLed geoloc leaves its entries; their pid is gone, so DVC drops them and runs
    done = dvc(repo, "repro")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "had been killed. Auto removed it from the lock file." in done.stderr
    assert (repo / "artifacts" / "quick" / "done.txt").is_file()


def test_the_lock_is_released_when_the_run_ends_or_fails(repo):
    (repo / "stage-release").touch()
    (repo / "dvc.yaml").write_text(
        stage_yaml("quick", "python hold.py artifacts/quick", ["hold.py"], "artifacts/quick")
    )
    with dvc_write_lock(repo, materialize_outputs(repo), argv=["geoloc", "materialize"]):
        assert pids_in(rwlock(repo)) == {os.getpid()}
        busy = dvc(repo, "repro")
        assert busy.returncode != 0 and f"(PID {os.getpid()}): geoloc materialize" in busy.stderr
    assert pids_in(rwlock(repo)) == set()
    with pytest.raises(KeyError), dvc_write_lock(repo, materialize_outputs(repo)):
        raise KeyError("a failing run")
    assert pids_in(rwlock(repo)) == set()
    failing = geoloc(repo, "materialize", "--asset", "no_such_asset")  # fails inside the lock
    _, err = failing.communicate(timeout=WAIT_SECONDS)
    assert failing.returncode == 2 and "unknown assets ['no_such_asset']" in err, err
    assert pids_in(rwlock(repo)) == set()
    done = dvc(repo, "repro")
    assert done.returncode == 0, done.stdout + done.stderr


def test_entries_of_dead_processes_do_not_block_and_are_dropped(repo):
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    dead = {"pid": finished.pid, "cmd": "dvc repro"}
    tmp = repo / ".dvc" / "tmp"
    tmp.mkdir(exist_ok=True)
    manifests = str(repo / "artifacts" / "manifests")
    stale = {"write": {manifests: dead}, "read": {manifests: [dead]}}
    (tmp / "rwlock").write_text(json.dumps(stale))
    (tmp / "lock").write_text(f" {finished.pid}\n")  # the file outlives its lock
    with dvc_write_lock(repo, materialize_outputs(repo)):
        assert pids_in(rwlock(repo)) == {os.getpid()}
    assert rwlock(repo) == {}


def test_materialize_run_as_a_dvc_stage_command_goes_ahead(repo):
    (repo / "dvc.yaml").write_text(
        stage_yaml(
            "data", "geoloc materialize --group data", ["data/raw"], "artifacts/manifests"
        )
    )
    done = dvc(repo, "repro")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Running stage 'data'" in done.stdout
    assert "ok     reference_manifest" in done.stdout
    assert (repo / "artifacts" / "manifests" / "reference.csv").is_file()
    assert rwlock(repo) == {}


def test_two_hand_started_runs_share_the_lock_and_both_keep_dvc_out(repo):
    (repo / "stage-release").touch()
    (repo / "dvc.yaml").write_text(
        stage_yaml("quick", "python hold.py artifacts/quick", ["hold.py"], "artifacts/quick")
    )
    first = held_geoloc(repo)
    try:
        with dvc_write_lock(repo, materialize_outputs(repo), argv=["geoloc", "materialize"]):
            lock = rwlock(repo)
            assert {info["pid"] for info in lock["write"].values()} == {first.pid}
            assert {info["pid"] for infos in lock["read"].values() for info in infos} == {
                os.getpid()
            }
            kill(first)
            busy = dvc(repo, "repro")  # the second one still keeps DVC out
            assert busy.returncode != 0
            assert f"(PID {os.getpid()}): geoloc materialize" in busy.stderr
    finally:
        kill(first)
    done = dvc(repo, "repro")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_hand_started_run_refuses_where_dvc_uses_hardlink_locks(repo):
    assert dvc(repo, "config", "core.hardlink_lock", "true").returncode == 0
    refused = pytest.raises(DvcLockError, match=r"sets core\.hardlink_lock")
    with refused, dvc_write_lock(repo, materialize_outputs(repo)):
        pytest.fail("ran beside locks it cannot share")
    assert rwlock(repo) == {}
