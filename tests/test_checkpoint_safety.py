"""A training checkpoint is loaded as tensors and plain data only: a replaced file that carries
a pickled object is refused with its path named, and its code never runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from geoloc_core.training.loop import _resume, _save


class WritesAMarker:
    """Unpickling this creates a file: proof that loading ran code from the checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _training_objects():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4)
    return model, optimizer, scheduler, torch.Generator().manual_seed(0)


def test_a_checkpoint_carrying_code_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "code-ran"
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"fingerprint": "f", "payload": WritesAMarker(marker)}, checkpoint)
    with pytest.raises(ValueError, match=r"checkpoint .*checkpoint\.pt.* delete it"):
        _resume(checkpoint, "f", *_training_objects())
    assert not marker.exists()


def test_a_checkpoint_we_wrote_loads_with_its_state(tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    model, optimizer, scheduler, generator = _training_objects()
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    scheduler.step()
    _save(checkpoint, model, optimizer, scheduler, generator, 1, [], "f")
    fresh = _training_objects()
    epochs, history, part = _resume(checkpoint, "f", *fresh)
    assert (epochs, history, part) == (1, [], None)  # an epoch's end: no part of the next
    assert torch.equal(fresh[0].weight, model.weight)
    assert fresh[2].last_epoch == scheduler.last_epoch == 1
    assert _resume(checkpoint, "other settings", *_training_objects()) == (0, [], None)
