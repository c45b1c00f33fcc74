"""train.checkpoint_every_steps: a checkpoint within an epoch, and a run stopped after one that
resumes at the epoch's next batch and ends where an unbroken run ends.

The loop itself (training/loop.py) on a small real model and a real InfoNCE loss, so that the
stop can land at any step: the model has dropout (torch's global generator is drawn from at
every step) and the epoch order is drawn from the loop's generator, so a resumed run that did
not restore both would train on other numbers. The SIGKILL of the real step is in
tests/test_interruptions.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from geoloc_core.models.losses import LossOutput, multi_positive_info_nce
from geoloc_core.training.loop import CHECKPOINT_NAME, LoopConfig, train

N, BATCH, EPOCHS = 70, 8, 3  # 9 batch slots an epoch, the last of 6 samples
LOOP = LoopConfig(
    seed=3,
    epochs=EPOCHS,
    batch_size=BATCH,
    lr=1e-2,
    weight_decay=1e-4,
    lr_step_gamma=0.8,
    num_threads=1,
)


class Pairs:
    """A batch source: a feature vector and a coordinate per sample."""

    def __init__(self) -> None:
        rng = np.random.default_rng(11)
        self.x = torch.from_numpy(rng.normal(size=(N, 12)).astype(np.float32))
        self.y = torch.from_numpy(rng.uniform(-1, 1, size=(N, 2)).astype(np.float32))

    def __len__(self) -> int:
        return N

    def batch(self, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.from_numpy(np.asarray(positions, dtype=np.int64))
        return self.x[index], self.y[index]


class TwoTowers(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(5)
        self.image = torch.nn.Sequential(
            torch.nn.Linear(12, 16), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(16, 8)
        )
        self.gps = torch.nn.Linear(2, 8)
        self.logit_scale = torch.nn.Parameter(torch.tensor(1.0))
        with torch.no_grad():
            for param in self.parameters():
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)


class Counted:
    """The InfoNCE loss of a batch; counts the batches it computed."""

    def __init__(self, model: TwoTowers) -> None:
        self.model, self.calls = model, 0

    def __call__(self, batch: tuple[torch.Tensor, torch.Tensor]) -> LossOutput:
        self.calls += 1
        x, y = batch
        image = F.normalize(self.model.image(x), dim=-1)
        gps = F.normalize(self.model.gps(y), dim=-1)
        scale = self.model.logit_scale.exp()
        total = multi_positive_info_nce(scale * image @ gps.T, torch.eye(len(x), dtype=torch.bool))
        value = float(total.detach())
        return LossOutput(total, {"image_gps": value}, {"image_gps": float(1 / scale.detach())})


class StopHere(Exception):
    """Raised from on_step: the run ends there, as a killed process would."""


def run(folder: Path, every: int, stop_at: int | None = None, fingerprint: str = "f"):
    """Train from scratch or from folder's checkpoint: (model, history, loss calls, steps seen);
    stop_at: the step after which on_step stops the run (its checkpoint, if any, is written)."""
    torch.manual_seed(123)  # the global generator is re-seeded by the loop (seed_everything)
    model = TwoTowers()
    loss = Counted(model)
    steps: list[int] = []

    def on_step(step: int, metrics: dict[str, float]) -> None:
        steps.append(step)
        if step == stop_at:
            raise StopHere

    config = dataclasses.replace(LOOP, checkpoint_every_steps=every)
    history = None
    with contextlib.suppress(StopHere):
        history = train(
            model, Pairs(), loss, config, folder, fingerprint, progress=False, on_step=on_step
        )
    return model, history, loss.calls, steps


def checkpoint(folder: Path) -> dict:
    return torch.load(folder / CHECKPOINT_NAME, weights_only=True, map_location="cpu")


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    left, right = a.state_dict(), b.state_dict()
    assert left.keys() == right.keys()
    for name in left:
        assert torch.equal(left[name], right[name]), name


@pytest.mark.parametrize("stop_at", [3, 14, 16])  # in epoch 1; in epoch 2 (of 9 steps each)
def test_stopped_after_a_step_checkpoint_resumes_there_and_equals_a_straight_run(tmp_path, stop_at):
    folder = tmp_path / "stopped"
    run(folder, every=2, stop_at=stop_at)  # on_step runs before its step's checkpoint
    saved = checkpoint(folder)
    done_epochs, within = divmod(stop_at, 9)
    part = saved["epoch_part"]
    assert saved["epoch"] == done_epochs and len(saved["history"]) == done_epochs
    assert part["batches_done"] == part["count"] == (within - 1) // 2 * 2  # every 2 steps
    assert part["step"] == done_epochs * 9 + part["count"]

    model, history, calls, steps = run(folder, every=2)
    resumed_at = part["step"]
    assert calls == EPOCHS * 9 - resumed_at  # the batches done were not computed again
    assert steps == list(range(resumed_at + 1, EPOCHS * 9 + 1))
    straight, straight_history, straight_calls, _ = run(tmp_path / "straight", every=0)
    assert straight_calls == EPOCHS * 9
    assert_same_weights(model, straight)
    assert history == straight_history  # the epochs' mean losses, lrs and temperatures too
    assert [r.epoch for r in history] == [1, 2, 3]
    assert "epoch_part" not in checkpoint(folder)  # the last epoch's end replaced it


def test_checkpoints_within_epochs_do_not_change_the_training(tmp_path):
    plain, plain_history, _, _ = run(tmp_path / "plain", every=0)
    often, often_history, _, _ = run(tmp_path / "often", every=1)
    assert_same_weights(plain, often)
    assert plain_history == often_history
    assert "epoch_part" not in checkpoint(tmp_path / "plain")


def test_a_step_checkpoint_of_other_settings_is_not_resumed(tmp_path):
    folder = tmp_path / "run"
    run(folder, every=2, stop_at=5, fingerprint="other settings")
    _, history, calls, steps = run(folder, every=2)
    assert calls == EPOCHS * 9 and steps[0] == 1 and len(history) == EPOCHS


class OneProcessTeam:
    """A team of one process that is not the writer (a rank > 0 of training/distributed.py)."""

    writes = False

    def __init__(self) -> None:
        self.barriers = 0

    def average_gradients(self, params: list[torch.nn.Parameter]) -> None:
        pass  # one process: its gradient is the average

    def barrier(self) -> None:
        self.barriers += 1


def test_only_the_writer_saves_and_every_process_meets_at_each_checkpoint(tmp_path):
    team = OneProcessTeam()
    model = TwoTowers()
    config = dataclasses.replace(LOOP, checkpoint_every_steps=3)
    train(model, Pairs(), Counted(model), config, tmp_path, "f", progress=False, team=team)
    assert not (tmp_path / CHECKPOINT_NAME).exists()
    # after steps 3 and 6 of each epoch, and at its end: none after step 9, the epoch's last,
    # whose epoch checkpoint follows at once
    assert team.barriers == EPOCHS * (2 + 1)
