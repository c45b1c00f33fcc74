"""Data files (feature shards, embedding vectors, segmentation shards, tar indexes) are read
without unpickling, so a replaced .npy cannot run code when read.

A feature-cache shard whose ids.npy is an object array carrying a payload that writes a marker
when unpickled must be reported unreadable with the code never run; a static check over
geoloc_core and geoloc_assets finds no np.load with allow_pickle, and no pickle, joblib, dill or
pd.read_pickle loads."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np

from geoloc_core.training.feature_cache import FORMAT, IDS, META, POOLED, TOKENS, shard_problem

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("geoloc_core", "geoloc_assets")


class WritesAMarker:
    """Unpickling this creates a file: proof that reading ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_feature_shard_with_a_pickled_ids_file_is_unreadable_and_never_runs_code(tmp_path):
    marker = tmp_path / "code-ran"
    shard = tmp_path / "features" / "shard-00000-of-00001"
    shard.mkdir(parents=True)
    payload = np.empty(1, dtype=object)
    payload[0] = WritesAMarker(marker)
    np.save(shard / IDS, payload, allow_pickle=True)
    np.save(shard / POOLED, np.zeros((1, 4), np.float16))
    np.save(shard / TOKENS, np.zeros((1, 2, 4), np.float16))
    (shard / META).write_text(json.dumps({"format": FORMAT, "digest": "x", "failures": {}}))
    problem = shard_problem(shard)
    assert not marker.exists(), "reading a feature shard ran code carried by its ids.npy"
    assert problem is not None and problem.startswith("unreadable"), problem


def calls_in_packages():
    for package in PACKAGES:
        for source in sorted((REPO / package).rglob("*.py")):
            tree = ast.parse(source.read_text(), filename=str(source))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    owner = node.func.value
                    name = owner.id if isinstance(owner, ast.Name) else ""
                    yield f"{source.relative_to(REPO)}:{node.lineno}", name, node


def test_no_data_file_is_read_with_pickle():
    unsafe = []
    np_loads = 0
    for where, owner, call in calls_in_packages():
        attr = call.func.attr
        if owner == "np" and attr == "load":
            np_loads += 1
        pickling = [
            k for k in call.keywords
            if k.arg == "allow_pickle"
            and not (isinstance(k.value, ast.Constant) and k.value.value is False)
        ]
        if pickling:
            unsafe.append(f"{where} {owner}.{attr}(allow_pickle=...)")
        if (owner, attr) in {
            ("pickle", "load"), ("pickle", "loads"), ("pd", "read_pickle"),
            ("joblib", "load"), ("dill", "load"), ("cloudpickle", "load"),
        }:
            unsafe.append(f"{where} {owner}.{attr}")
    assert np_loads >= 5  # the check sees the project's np.load calls
    assert not unsafe, f"data read with pickle enabled: {unsafe}"
