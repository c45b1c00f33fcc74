"""Every torch.load in the project reads tensors and plain data only (weights_only=True), so a
replaced or downloaded weights file cannot run code when loaded.

GeoCLIP's loader (model.gps_init, a file the user downloads) is fed a file carrying a pickled
object that writes a marker when unpickled; a static check covers every torch.load call in
geoloc_core and geoloc_assets (the training checkpoint has its own test in
test_checkpoint_safety.py)."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import torch

from geoloc_core.encoders.geoclip import load_geoclip_weights
from geoloc_core.encoders.gps import GPSEncoder

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("geoloc_core", "geoloc_assets")


class WritesAMarker:
    """Unpickling this creates a file: proof that loading ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_gps_init_file_carrying_code_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "code-ran"
    file = tmp_path / "location_encoder_weights.pth"
    torch.save({"state_dict": {"LocEnc0.head.0.bias": torch.zeros(12)},
                "payload": WritesAMarker(marker)}, file)
    encoder = GPSEncoder(12, (1.0, 16.0, 256.0), n_features=16, hidden=16, layers=3)
    refused: BaseException | None = None
    try:
        load_geoclip_weights(encoder, file)
    except Exception as exc:  # what matters: the code never ran
        refused = exc
    assert not marker.exists(), "loading model.gps_init ran code carried by the file"
    assert isinstance(refused, pickle.UnpicklingError), refused


def torch_load_calls() -> list[tuple[str, int, ast.Call]]:
    calls = []
    for package in PACKAGES:
        for source in sorted((REPO / package).rglob("*.py")):
            tree = ast.parse(source.read_text(), filename=str(source))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "load"
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "torch"
                ):
                    calls.append((str(source.relative_to(REPO)), node.lineno, node))
    return calls


def test_every_torch_load_passes_weights_only_true():
    calls = torch_load_calls()
    assert len(calls) >= 3  # training/loop.py, models/persistence.py, encoders/geoclip.py
    unsafe = [
        f"{path}:{line}"
        for path, line, call in calls
        if not any(
            k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
            for k in call.keywords
        )
    ]
    assert not unsafe, f"torch.load without weights_only=True: {unsafe}"
