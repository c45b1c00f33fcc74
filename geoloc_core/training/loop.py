"""Seeded, resumable contrastive training with a checkpoint every epoch (and, if asked, every
N steps within one).

One loop serves every trainer (the alignment variants and the demo backbone's pretraining): it
sees a module, a batch source and a loss function. A run resumed from epoch k's checkpoint
continues with the same weights, optimiser, scheduler and random state, so it reaches the same
final weights as an uninterrupted run. A checkpoint written within an epoch also holds the
epoch-order generator as it was before that epoch's order was drawn (the resumed run draws the
same order), the batches done and the epoch's running loss sums: the resumed run skips those
batches without computing them and ends the epoch with the same weights and the same mean.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from geoloc_core.kill_point import kill_point
from geoloc_core.models.losses import LossOutput
from geoloc_core.training.precision import Precision

CHECKPOINT_NAME = "last.pt"


class BatchSource(Protocol):
    def __len__(self) -> int: ...

    def batch(self, positions: np.ndarray) -> Any:
        """The samples at positions, ready for the loss function."""
        ...


class Team(Protocol):
    """The processes of a distributed run, as the loop sees them (training/distributed.py)."""

    writes: bool  # this process writes the checkpoint

    def average_gradients(self, params: list[torch.nn.Parameter]) -> None: ...

    def barrier(self) -> None: ...


def epoch_order(data: Any, size: int, generator: torch.Generator) -> np.ndarray:
    """The epoch's sample order: the source's own (a shard stream's) or one permutation."""
    own = getattr(data, "epoch_order", None)
    if own is not None:
        return own(generator)
    return torch.randperm(size, generator=generator).numpy()


@dataclass(frozen=True)
class LoopConfig:
    seed: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    lr_step_gamma: float
    num_threads: int
    device: str = "cpu"
    amp: str = "off"  # off | fp16 | bf16 (training/precision.py)
    checkpoint_every_steps: int = 0  # > 0: also a checkpoint every N steps within an epoch


@dataclass
class EpochPart:
    """How far a checkpoint written within an epoch got: what the resumed run needs to go on at
    the next batch as if it had never stopped."""

    batches_done: int  # batch slots of the epoch consumed (the next one starts there)
    step: int  # the run's step counter after them
    sums: dict[str, float]  # the running sums of the step metrics, for the epoch's means
    count: int  # steps taken in this epoch
    temperatures: dict[str, float]  # the last step's (the epoch's record takes the last ones)
    order_generator: torch.Tensor  # the epoch-order generator before this epoch's order


@dataclass
class EpochResult:
    epoch: int
    train_loss: float
    lr: float
    terms: dict[str, float] = field(default_factory=dict)
    temperatures: dict[str, float] = field(default_factory=dict)
    validation: dict[str, float] = field(default_factory=dict)


LossFn = Callable[[Any], LossOutput]
StepCallback = Callable[[int, dict[str, float]], None]  # step, losses and temperatures
EpochCallback = Callable[[EpochResult], None]
Validator = Callable[[], dict[str, float]]


def seed_everything(seed: int, num_threads: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(num_threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def step_metrics(output: LossOutput) -> dict[str, float]:
    """Flat MLflow-safe names: train_loss (the sum), loss_<term>, temperature_<term>."""
    metrics = {"train_loss": float(output.total.detach())}
    metrics.update({f"loss_{k}": v for k, v in output.terms.items()})
    metrics.update({f"temperature_{k}": v for k, v in output.temperatures.items()})
    return metrics


def train(
    model: torch.nn.Module,
    data: BatchSource,
    loss_fn: LossFn,
    config: LoopConfig,
    checkpoint_dir: Path,
    fingerprint: str,
    validator: Validator | None = None,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
    stop_after_epoch: int | None = None,
    progress: bool = True,
    team: Team | None = None,
    max_steps_per_epoch: int | None = None,
) -> list[EpochResult]:
    """Train model in place; resumes from checkpoint_dir/last.pt when it has this fingerprint.

    The fingerprint (a hash of the settings and the inputs) keeps a checkpoint of other settings
    or other data from being resumed as if it were this run's. A batch of one sample (the last
    one, at most) is skipped: it has no negatives. With a team (several processes), data and
    loss_fn are the rank's (training/distributed.py): gradients are averaged across the team
    before each optimiser step and only the writer saves the checkpoint. max_steps_per_epoch
    shortens every epoch to its first steps (benchmarks and rehearsals at scale only).
    config.checkpoint_every_steps > 0 also saves every that many steps within an epoch, and a
    run resumed from such a checkpoint goes on at the epoch's next batch (module doc).
    """
    if len(data) < 2:
        raise ValueError(f"contrastive training needs at least 2 samples, got {len(data)}")
    seed_everything(config.seed, config.num_threads)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=config.lr_step_gamma)
    generator = torch.Generator().manual_seed(config.seed)
    precision = Precision(config.amp, config.device)
    checkpoint_path = Path(checkpoint_dir) / CHECKPOINT_NAME
    start_epoch, history, part = _resume(
        checkpoint_path, fingerprint, model, optimizer, scheduler, generator, precision
    )
    steps_per_epoch = (len(data) + config.batch_size - 1) // config.batch_size
    step = part.step if part else start_epoch * steps_per_epoch
    every = config.checkpoint_every_steps

    def save(epochs_done: int, part: EpochPart | None = None) -> None:
        """This run's checkpoint: everything but how far it got is the same objects."""
        _save(
            checkpoint_path,
            model,
            optimizer,
            scheduler,
            generator,
            epochs_done,
            history,
            fingerprint,
            precision,
            part=part,
        )

    for epoch in range(start_epoch, config.epochs):
        model.train()
        before_order = generator.get_state()  # a checkpoint within the epoch redraws from here
        order = epoch_order(data, len(data), generator)
        sums: dict[str, float] = dict(part.sums) if part else {}
        count = part.count if part else 0
        temperatures = dict(part.temperatures) if part else {}
        done = part.batches_done if part else 0
        part = None  # only the first epoch of a resumed run starts within itself
        batches = range(0, len(order), config.batch_size)[:max_steps_per_epoch]
        label = f"epoch {epoch + 1}/{config.epochs}"
        bar = tqdm(
            range(done, len(batches)),
            desc=label,
            total=len(batches),
            initial=done,
            disable=None if progress else True,
        )
        for index in bar:
            start = batches[index]
            positions = order[start : start + config.batch_size]
            if len(positions) < 2:
                continue
            with precision.autocast():
                last = loss_fn(data.batch(positions))
            optimizer.zero_grad(set_to_none=True)
            precision.backward(last.total)
            if team is not None:  # the scaled gradients: every process then finds the same
                team.average_gradients(params)  # overflow (or none) and skips the same steps
            precision.step(optimizer)
            step += 1
            count += 1
            metrics = step_metrics(last)
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + value
            temperatures = dict(last.temperatures)
            if on_step:
                on_step(step, metrics)
            if every and count % every == 0 and index + 1 < len(batches):
                if team is None or team.writes:
                    progress_made = EpochPart(
                        index + 1, step, dict(sums), count, temperatures, before_order
                    )
                    save(epoch, progress_made)
                if team is not None:
                    team.barrier()  # as at an epoch's end: the checkpoint is in place first
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        means = {k: v / max(count, 1) for k, v in sums.items()}
        result = EpochResult(
            epoch + 1,
            means.get("train_loss", float("nan")),
            lr,
            terms={k[5:]: v for k, v in means.items() if k.startswith("loss_")},
            temperatures=temperatures,
        )
        if validator is not None:
            model.eval()
            result.validation = validator()
            model.train()
        history.append(result)
        if team is None or team.writes:
            save(epoch + 1)
        if team is not None:
            team.barrier()  # the checkpoint is in place before any process goes on
        if on_epoch:
            on_epoch(result)
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            break
    model.eval()
    return history


def _resume(
    path, fingerprint, model, optimizer, scheduler, generator, precision=None
) -> tuple[int, list[EpochResult], EpochPart | None]:
    """Load a matching checkpoint into the objects: (epochs done, their results, how far the
    next epoch got when the checkpoint was written within it); else (0, [], None)."""
    if not path.is_file():
        return 0, [], None
    try:
        # tensors and plain data only: a replaced checkpoint file must not be able to run code
        state = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        raise ValueError(
            f"checkpoint {path} holds more than tensors and plain data, so it was not loaded "
            f"({str(exc).splitlines()[0]}); delete it to train from the start"
        ) from None
    if state.get("fingerprint") != fingerprint:
        return 0, [], None
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if precision is not None:
        precision.load_state_dict(state.get("scaler"))
    history = [EpochResult(**record) for record in state["history"]]
    part = state.get("epoch_part")
    if part is not None:  # the generator goes back to before the epoch's order: it is redrawn
        part = EpochPart(**part)
        generator.set_state(part.order_generator)
    return int(state["epoch"]), history, part


def _save(
    path,
    model,
    optimizer,
    scheduler,
    generator,
    epoch,
    history,
    fingerprint,
    precision=None,
    part: EpochPart | None = None,
) -> None:
    """Write the checkpoint atomically (a temp file, then a rename). epoch: the epochs done;
    part: how far the next one got, for a checkpoint written within it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    scaler = precision.state_dict() if precision is not None else None
    torch.save(
        {
            **({"scaler": scaler} if scaler is not None else {}),
            **({"epoch_part": asdict(part)} if part is not None else {}),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "epoch": epoch,
            "history": [asdict(record) for record in history],
            "fingerprint": fingerprint,
        },
        tmp,
    )
    # complete, not yet in place
    kill_point("step-checkpoint-written" if part else "epoch-checkpoint-written")
    tmp.replace(path)
