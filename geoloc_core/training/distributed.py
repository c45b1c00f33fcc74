"""Training on several processes (train.devices > 1): torchrun, in-batch negatives gathered.

Every process draws the same global batch (the same seed, the same order) and embeds its own
contiguous share of it. The embeddings are gathered with gradient flow
(torch.distributed.nn.functional.all_gather) and every process computes the loss of the whole
global batch, so the same-place positives and the logit scale see the global batch, exactly as
one process would. all_gather's backward sums the gradient that each process's copy of the
loss sends to a share, so a share's gradient arrives world times; averaging the parameters'
gradients across processes (the loop's Team.average_gradients) divides that back out and keeps
the logit scale's gradient (the same on every process) as it is: the step is the single-process
step on the same global batch.

The step launches `python -m torch.distributed.run ... -m geoloc_core.training.distributed
REQUEST.json` (launch); each process runs steps.training.train_model with its Team, and
process 0 writes the checkpoint, the model and the result, as a single-process run does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.nn.functional import all_gather

from geoloc_core.models.alignment import GeoAlignmentModel
from geoloc_core.models.inputs import AlignmentBatch
from geoloc_core.models.losses import LossOutput
from geoloc_core.training.loop import EpochCallback, EpochResult, StepCallback

RESULT_NAME = "result.json"
STEPS_NAME, EPOCHS_NAME = "steps.jsonl", "epochs.jsonl"  # what process 0 saw, for replay


def shares(n: int, world: int) -> list[int]:
    """How many of a global batch of n each process embeds: contiguous, as even as can be."""
    return [len(part) for part in np.array_split(np.arange(n), world)]


@dataclass(frozen=True)
class ShareBatch:
    """One process's share of a global batch, padded to the largest share (all_gather needs
    equal shapes); sizes: every process's real share, so the padding is dropped after it."""

    batch: AlignmentBatch
    sizes: tuple[int, ...]

    def to(self, device: torch.device | str) -> ShareBatch:
        return replace(self, batch=self.batch.to(device))


class RankShare:
    """A batch source seen by one process: the global order, its own share of each batch."""

    def __init__(self, data: Any, rank: int, world: int):
        self.data, self.rank, self.world = data, rank, world
        own = getattr(data, "epoch_order", None)
        if own is not None:
            self.epoch_order = own

    def __len__(self) -> int:
        return len(self.data)

    def batch(self, positions: np.ndarray) -> ShareBatch:
        positions = np.asarray(positions)
        sizes = shares(len(positions), self.world)
        start = sum(sizes[: self.rank])
        mine = positions[start : start + sizes[self.rank]]
        padding = max(sizes) - len(mine)
        if padding:  # rows that are embedded and then dropped: any sample of the batch will do
            mine = np.concatenate([mine, np.repeat(positions[:1], padding)])
        return ShareBatch(self.data.batch(mine), tuple(sizes))


def gather_rows(tensor: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """Every process's rows of tensor, in rank order, padding dropped; gradients flow back."""
    parts = all_gather(tensor.contiguous())
    return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])


def gathered_loss(model: GeoAlignmentModel, share: ShareBatch, same_place_km: float) -> LossOutput:
    """The loss of the global batch, computed from this process's share of it (module doc)."""
    batch = share.batch
    if batch.latlon is None:
        raise ValueError("training batches need coordinates")
    parts = {name: gather_rows(value, share.sizes) for name, value in model.embed(batch).items()}
    gps = gather_rows(model.encode_gps(batch.latlon), share.sizes)
    globally = {
        f.name: gather_rows(getattr(batch, f.name), share.sizes)
        for f in fields(batch)
        if f.name in ("latlon", "text", "caption_ids") and getattr(batch, f.name) is not None
    }
    whole = AlignmentBatch(pooled=gps, **globally)  # pooled: a stand-in the loss never reads
    return model.contrastive_loss(parts, gps, whole, same_place_km)


class ProcessTeam:
    """The loop's Team over torch.distributed's default group."""

    def __init__(self) -> None:
        self.rank = dist.get_rank()
        self.world = dist.get_world_size()
        self.writes = self.rank == 0

    def average_gradients(self, params: list[torch.nn.Parameter]) -> None:
        for param in params:
            if param.grad is None:  # the same on every process: the same global loss
                continue
            dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)
            param.grad.div_(self.world)

    def barrier(self) -> None:
        dist.barrier()


def start_process_group(device: str) -> tuple[ProcessTeam, str]:
    """Join torchrun's group: gloo on cpu, nccl on cuda (one GPU per local rank); the device
    this process trains on."""
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if device == "cuda" or (device == "auto" and torch.cuda.device_count() >= processes):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        return ProcessTeam(), f"cuda:{local}"
    dist.init_process_group("gloo")
    return ProcessTeam(), "cpu"


def in_process_group() -> bool:
    return dist.is_available() and dist.is_initialized()


# --- the launcher and the entry point -------------------------------------------------------


def launch(request: dict[str, Any], nproc: int, workdir: Path) -> dict[str, Any]:
    """Run training on nproc processes under torchrun; the result that process 0 wrote."""
    workdir.mkdir(parents=True, exist_ok=True)
    request_file = workdir / "request.json"
    request_file.write_text(json.dumps(request, indent=2, default=str))
    result_file = workdir / RESULT_NAME
    for name in (RESULT_NAME, STEPS_NAME, EPOCHS_NAME):
        (workdir / name).unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "geoloc_core.training.distributed",
        str(request_file),
    ]
    finished = subprocess.run(command, check=False)
    if finished.returncode != 0 or not result_file.is_file():
        raise RuntimeError(
            f"distributed training on {nproc} processes failed (exit {finished.returncode}); "
            f"its output is above. Run `{' '.join(command)}` to retry it alone, or set "
            "train.devices: 1"
        )
    return json.loads(result_file.read_text())


def main(argv: Sequence[str] | None = None) -> None:
    """One torchrun process: train_model with this process's team (request: launch's)."""
    from geoloc_core.paths import ProjectPaths
    from geoloc_core.steps.training import train_model

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        raise SystemExit("usage: torchrun ... -m geoloc_core.training.distributed REQUEST.json")
    request_file = Path(args[0])
    request = json.loads(request_file.read_text())
    team, device = start_process_group(request["train"]["device"])
    folder = request_file.parent

    def record_step(step: int, metrics: dict[str, float]) -> None:
        _append(folder / STEPS_NAME, {"step": step, "metrics": metrics})

    def record_epoch(result: EpochResult) -> None:
        _append(folder / EPOCHS_NAME, asdict(result))

    try:
        result = train_model(
            ProjectPaths(Path(request["root"])),
            request["model"],
            request["train"],
            tuple(request["thresholds_km"]),
            request["fingerprint"],
            stop_after_epoch=request.get("stop_after_epoch"),
            progress=team.writes,
            on_step=record_step if team.writes else None,
            on_epoch=record_epoch if team.writes else None,
            team=team,
            team_device=device,
        )
        if team.writes:
            (request_file.parent / RESULT_NAME).write_text(json.dumps(result, default=float))
    finally:
        dist.destroy_process_group()


def _append(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _records(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def replay(
    workdir: Path,
    on_step: StepCallback | None,
    on_epoch: EpochCallback | None,
) -> None:
    """Hand what process 0 recorded to the step's callbacks (its MLflow logging)."""
    if on_step:
        for record in _records(workdir / STEPS_NAME):
            on_step(int(record["step"]), record["metrics"])
    if on_epoch:
        for record in _records(workdir / EPOCHS_NAME):
            on_epoch(EpochResult(**record))


if __name__ == "__main__":
    main()
