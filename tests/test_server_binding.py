"""Servers the project starts listen on 127.0.0.1 unless told otherwise: the LMM test server
(checked on its socket, and from the machine's own non-loopback address), and every server a
Makefile target starts (Dagster, MLflow), which must name the loopback host."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import pytest

from geoloc_core.lmm.stub_server import LmmStubServer

REPO = Path(__file__).resolve().parent.parent
SERVER_COMMANDS = re.compile(
    r"\b(dagster dev|dagster-webserver|mlflow (?:ui|server|models serve))\b"
)
LOOPBACK_HOST = re.compile(r"(?:^|\s)(?:-h|--host)[ =]127\.0\.0\.1(?:\s|$)")


def non_loopback_addresses() -> list[str]:
    """This machine's IPv4 addresses other than 127.x, from `hostname -I`."""
    try:
        listed = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [a for a in listed.stdout.split() if "." in a and not a.startswith("127.")]


def test_lmm_test_server_listens_on_loopback_only():
    with LmmStubServer() as server:
        host, port = server._httpd.socket.getsockname()[:2]
        assert host == "127.0.0.1"
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        for address in non_loopback_addresses():
            with pytest.raises(OSError):
                socket.create_connection((address, port), timeout=2).close()


def test_lmm_test_server_refuses_a_public_host():
    with pytest.raises(ValueError, match="loopback only"):
        LmmStubServer(host="0.0.0.0")


def test_every_server_a_make_target_starts_names_the_loopback_host():
    recipes = [
        line.strip()
        for line in (REPO / "Makefile").read_text().splitlines()
        if line.startswith("\t") and SERVER_COMMANDS.search(line)
    ]
    assert len(recipes) >= 2, recipes  # make ui and make mlflow-ui at least
    public = [line for line in recipes if not LOOPBACK_HOST.search(line)]
    assert public == [], f"Makefile recipes starting a server on a public address: {public}"
