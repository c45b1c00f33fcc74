"""Files the project reads cannot run code: every torch.load passes weights_only=True, and data
files (feature shards, embedding vectors, segmentation shards, tar indexes) are read without
unpickling.

Each loader is fed a file carrying a pickled object that writes a marker when unpickled: GeoCLIP's
weights (model.gps_init, a file the user downloads) and a feature-cache shard whose ids.npy is
an object array. Static checks cover every torch.load and np.load call in geoloc_core and
geoloc_assets, and that no pickle, joblib, dill or pd.read_pickle load is used. The training
checkpoint has its own test in test_checkpoint_safety.py.
"""

from __future__ import annotations

import ast
import json
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from geoloc_core.encoders.geoclip import load_geoclip_weights
from geoloc_core.encoders.gps import GPSEncoder
from geoloc_core.training.feature_cache import FORMAT, IDS, META, POOLED, TOKENS, shard_problem

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("geoloc_core", "geoloc_assets")
PICKLE_LOADS = {
    ("pickle", "load"),
    ("pickle", "loads"),
    ("pd", "read_pickle"),
    ("joblib", "load"),
    ("dill", "load"),
    ("cloudpickle", "load"),
}


class WritesAMarker:
    """Unpickling this creates a file: proof that loading ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def method_calls() -> Iterator[tuple[str, str, ast.Call]]:
    """(file:line, the name the method is called on, the call) for `name.method(...)` calls."""
    for package in PACKAGES:
        for source in sorted((REPO / package).rglob("*.py")):
            tree = ast.parse(source.read_text(), filename=str(source))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    owner = node.func.value
                    name = owner.id if isinstance(owner, ast.Name) else ""
                    yield f"{source.relative_to(REPO)}:{node.lineno}", name, node


def keyword_is(call: ast.Call, name: str, value: object) -> bool:
    return any(
        k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value
        for k in call.keywords
    )


def test_a_gps_init_file_carrying_code_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "code-ran"
    file = tmp_path / "location_encoder_weights.pth"
    torch.save(
        {"state_dict": {"LocEnc0.head.0.bias": torch.zeros(12)}, "payload": WritesAMarker(marker)},
        file,
    )
    encoder = GPSEncoder(12, (1.0, 16.0, 256.0), n_features=16, hidden=16, layers=3)
    refused: BaseException | None = None
    try:
        load_geoclip_weights(encoder, file)
    except Exception as exc:  # what matters: the code never ran
        refused = exc
    assert not marker.exists(), "loading model.gps_init ran code carried by the file"
    assert isinstance(refused, pickle.UnpicklingError), refused


def test_every_torch_load_passes_weights_only_true():
    loads = [(where, call) for where, owner, call in method_calls()
             if owner == "torch" and call.func.attr == "load"]
    assert len(loads) >= 3  # training/loop.py, models/persistence.py, encoders/geoclip.py
    unsafe = [where for where, call in loads if not keyword_is(call, "weights_only", True)]
    assert not unsafe, f"torch.load without weights_only=True: {unsafe}"


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


def test_no_data_file_is_read_with_pickle():
    unsafe = []
    np_loads = 0
    for where, owner, call in method_calls():
        attr = call.func.attr
        np_loads += owner == "np" and attr == "load"
        pickling = [k for k in call.keywords if k.arg == "allow_pickle"]
        if pickling and not keyword_is(call, "allow_pickle", False):
            unsafe.append(f"{where} {owner}.{attr}(allow_pickle=...)")
        if (owner, attr) in PICKLE_LOADS:
            unsafe.append(f"{where} {owner}.{attr}")
    assert np_loads >= 5  # the check sees the project's np.load calls
    assert not unsafe, f"data read with pickle enabled: {unsafe}"
