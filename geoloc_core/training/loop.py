"""Seeded, resumable contrastive training with a checkpoint every epoch.

A run resumed from epoch k's checkpoint continues with the same weights, optimiser, scheduler
and random state, so it reaches the same final weights as an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from geoloc_core.data.images import normalize_pixels
from geoloc_core.models.alignment import ImageGPSAlignment
from geoloc_core.models.config import TrainConfig

CHECKPOINT_NAME = "last.pt"


@dataclass
class EpochResult:
    epoch: int
    train_loss: float
    temperature: float
    lr: float
    validation: dict[str, float] = field(default_factory=dict)


StepCallback = Callable[[int, float, float], None]
EpochCallback = Callable[[EpochResult], None]
Validator = Callable[[ImageGPSAlignment], dict[str, float]]


def seed_everything(seed: int, num_threads: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(num_threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def train_alignment(
    model: ImageGPSAlignment,
    images: np.ndarray,
    latlon: np.ndarray,
    config: TrainConfig,
    checkpoint_dir: Path,
    validator: Validator | None = None,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
    stop_after_epoch: int | None = None,
    progress: bool = True,
    fingerprint: str = "",
) -> list[EpochResult]:
    """Train in place; resumes from checkpoint_dir/last.pt when it was made with this fingerprint.

    The fingerprint (a hash of the settings) keeps a checkpoint of other settings from being
    resumed as if it were this run's.
    """
    if len(images) != len(latlon):
        raise ValueError(f"{len(images)} images but {len(latlon)} coordinates")
    if len(images) < 2:
        raise ValueError("contrastive training needs at least 2 reference images")
    seed_everything(config.seed, config.num_threads)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=config.lr_step_gamma)
    generator = torch.Generator().manual_seed(config.seed)
    history: list[EpochResult] = []
    start_epoch = 0
    checkpoint_path = checkpoint_dir / CHECKPOINT_NAME
    state = torch.load(checkpoint_path, weights_only=False) if checkpoint_path.is_file() else None
    if state is not None and state.get("fingerprint") == fingerprint:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        history = [EpochResult(**record) for record in state["history"]]
        start_epoch = state["epoch"]
    coords = torch.as_tensor(latlon, dtype=torch.float32)
    step = start_epoch * ((len(images) + config.batch_size - 1) // config.batch_size)
    for epoch in range(start_epoch, config.epochs):
        model.train()
        order = torch.randperm(len(images), generator=generator)
        losses = []
        batches = range(0, len(order), config.batch_size)
        for start in tqdm(
            batches, desc=f"epoch {epoch + 1}/{config.epochs}", disable=None if progress else True
        ):
            batch = order[start : start + config.batch_size]
            if len(batch) < 2:
                continue
            pixels = normalize_pixels(images[batch.numpy()], model.mean, model.std)
            loss = model.loss(pixels, coords[batch], config.same_place_km)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss))
            step += 1
            if on_step:
                on_step(step, float(loss), model.temperature())
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        result = EpochResult(epoch + 1, float(np.mean(losses)), model.temperature(), lr)
        if validator is not None:
            result.validation = validator(model)
        history.append(result)
        _save_checkpoint(
            checkpoint_path, model, optimizer, scheduler, generator, epoch + 1, history, fingerprint
        )
        if on_epoch:
            on_epoch(result)
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            break
    return history


def _save_checkpoint(
    path, model, optimizer, scheduler, generator, epoch, history, fingerprint
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "epoch": epoch,
            "history": [vars(record) for record in history],
            "fingerprint": fingerprint,
        },
        tmp,
    )
    tmp.replace(path)
