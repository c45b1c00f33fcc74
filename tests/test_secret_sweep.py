"""The suite-wide secret sweep (tests/conftest.py): every test runs with the fake key in the
environment, and a run that writes it anywhere under its temp folders fails, naming the file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tests.conftest import REPO, SECRET_ENV_NAMES, SUITE_SECRET, files_holding

LEAKING_TEST = '''
import os

def test_writes_the_key(tmp_path):
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "log.txt").write_text("token=" + os.environ["OPENAI_API_KEY"])
'''


def test_every_key_variable_holds_the_suite_secret():
    assert {os.environ[name] for name in SECRET_ENV_NAMES} == {SUITE_SECRET}


def test_files_holding_finds_the_key_in_any_nested_file(tmp_path):
    needle = b"sk-another-FAKE-key"  # not the suite's: this test must not trip the sweep
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "run.db").write_bytes(b"\x00\x01" + needle + b"\x02")
    (tmp_path / "a" / "clean.txt").write_text("sk-another-FAKE")  # a prefix is not the key
    assert files_holding([tmp_path], needle) == [tmp_path / "a" / "b" / "run.db"]


def test_a_run_that_writes_the_key_fails_and_names_the_file(tmp_path):
    (tmp_path / "test_leak.py").write_text(LEAKING_TEST)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-q", "--rootdir", str(tmp_path),
         "--basetemp", str(tmp_path / "base"), "-c", os.devnull, str(tmp_path / "test_leak.py")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    shutil.rmtree(tmp_path / "base")  # what the inner run leaked, before this run's own sweep
    assert "1 passed" in run.stdout, run.stdout + run.stderr
    assert run.returncode == 1, run.stdout
    assert "fake API key was written into 1 files" in run.stdout
    assert "log.txt" in run.stdout
