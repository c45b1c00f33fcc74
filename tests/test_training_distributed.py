"""Training on 2 processes (gloo, CPU) equals training on 1 on the same global batches: one
step's loss and gradients, and the weights after 3 steps (the last batch split 4 + 3, so the
padding of an uneven share is exercised). Same-place positives and shared captions occur
across the two shares, so the gathered masks and logit scales are what is being tested. Stopped
within an epoch (train.checkpoint_every_steps), both processes resume from process 0's one file
and end with a straight two-process run's weights."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from geoloc_core.models.alignment import GeoAlignmentModel, InputShapes
from geoloc_core.models.config import ModelConfig
from geoloc_core.training.dataset import AlignmentData
from geoloc_core.training.distributed import ProcessTeam, RankShare, gathered_loss, shares
from geoloc_core.training.feature_cache import FeatureCache, ShardContent, write_shard
from geoloc_core.training.loop import LoopConfig, train

N, BATCH, DIM, TOKENS, TEXT_DIM, SAME_PLACE_KM = 23, 8, 16, 4, 8, 50.0
CONFIG = ModelConfig(
    variant="g3",
    embed_dim=8,
    head_hidden=16,
    gps_fourier_features=8,
    gps_hidden=16,
    gps_layers=1,
    fusion_dim=8,
    fusion_heads=2,
    seg_grid=2,
)
LOOP = LoopConfig(
    seed=3, epochs=1, batch_size=BATCH, lr=1e-2, weight_decay=1e-6, lr_step_gamma=0.9,
    num_threads=1,
)  # fmt: skip


def write_inputs(folder: Path) -> None:
    rng = np.random.default_rng(0)
    ids = sorted(f"img-{k:02d}" for k in range(N))
    content = ShardContent(
        ids,
        rng.standard_normal((N, DIM)).astype(np.float16),
        rng.standard_normal((N, TOKENS, DIM)).astype(np.float16),
        {},
    )
    meta = {"spec": {}, "fingerprint": "t", "image_size": 8, "pooled_dim": DIM}
    meta.update(token_dim=DIM, tokens=TOKENS)
    write_shard(folder / "features", 0, 1, content, meta)
    latlon = rng.uniform(-50, 50, (N, 2))
    latlon[1::4] = latlon[0::4][: len(latlon[1::4])] + 0.01  # pairs closer than SAME_PLACE_KM
    text = rng.standard_normal((5, TEXT_DIM)).astype(np.float32)
    np.savez(folder / "rest.npz", latlon=latlon, text=text, captions=np.arange(N) % 5)


def dataset(folder: Path) -> AlignmentData:
    rest = np.load(folder / "rest.npz")
    ids = sorted(f"img-{k:02d}" for k in range(N))
    features = FeatureCache(folder / "features")
    return AlignmentData(ids, features, None, rest["latlon"], rest["text"], rest["captions"])


def model() -> GeoAlignmentModel:
    return GeoAlignmentModel(CONFIG, InputShapes(DIM, DIM, TOKENS, TEXT_DIM), seed=1)


def first_batch() -> np.ndarray:
    return torch.randperm(N, generator=torch.Generator().manual_seed(LOOP.seed)).numpy()[:BATCH]


def one_step(net: GeoAlignmentModel, loss_of) -> tuple[float, dict[str, torch.Tensor]]:
    loss = loss_of()
    loss.total.backward()
    return float(loss.total.detach()), {k: p.grad.clone() for k, p in net.named_parameters()}


def rank_main(rank: int, folder: Path) -> None:
    dist.init_process_group(
        "gloo", init_method=f"file://{folder / 'store'}", rank=rank, world_size=2
    )
    torch.set_num_threads(1)
    team, data = ProcessTeam(), RankShare(dataset(folder), rank, 2)
    net = model()
    loss, grads = one_step(
        net, lambda: gathered_loss(net, data.batch(first_batch()), SAME_PLACE_KM)
    )
    team.average_gradients(list(net.parameters()))
    grads = {k: p.grad.clone() for k, p in net.named_parameters()}
    net = model()
    train(
        net,
        data,
        lambda share: gathered_loss(net, share, SAME_PLACE_KM),
        LOOP,
        folder / "checkpoints",
        "f",
        progress=False,
        team=team,
    )
    if rank == 0:
        torch.save({"loss": loss, "grads": grads, "weights": net.state_dict()}, folder / "two.pt")
    dist.destroy_process_group()


def test_two_processes_train_as_one_on_the_same_global_batch(tmp_path) -> None:
    write_inputs(tmp_path)
    assert shares(7, 2) == [4, 3]  # the last batch (23 = 8 + 8 + 7) is shared unevenly
    # fork: the processes inherit the imports (spawn would import torch twice more, seconds)
    mp.start_processes(rank_main, args=(tmp_path,), nprocs=2, join=True, start_method="fork")
    two = torch.load(tmp_path / "two.pt", weights_only=True)

    torch.set_num_threads(1)
    data = dataset(tmp_path)
    net = model()
    loss, grads = one_step(net, lambda: net.loss(data.batch(first_batch()), SAME_PLACE_KM))
    assert abs(loss - two["loss"]) <= 1e-5
    for name, grad in grads.items():
        assert float(grad.abs().max()) > 0, name  # every parameter learns from this batch
        torch.testing.assert_close(two["grads"][name], grad, rtol=0, atol=1e-5, msg=name)
    net = model()
    history = train(
        net,
        data,
        lambda batch: net.loss(batch, SAME_PLACE_KM),
        LOOP,
        tmp_path / "one-checkpoints",
        "f",
        progress=False,
    )
    assert history[0].epoch == 1
    moved = 0.0
    for name, weight in net.state_dict().items():
        torch.testing.assert_close(two["weights"][name], weight, rtol=0, atol=1e-4, msg=name)
        moved = max(moved, float((weight - model().state_dict()[name]).abs().max()))
    assert moved > 1e-3  # three steps changed the weights, so the comparison means something
    assert (tmp_path / "checkpoints" / "last.pt").is_file()  # process 0 wrote the checkpoint


class Stop(Exception):
    """Raised from on_step on every process at the same step: the run ends there."""


def resume_rank_main(rank: int, folder: Path) -> None:
    """Two epochs of 3 steps with a step checkpoint after every step: one run straight, one
    stopped after step 5 (its last checkpoint: epoch 2's first step) and started again."""
    dist.init_process_group(
        "gloo", init_method=f"file://{folder / 'store'}", rank=rank, world_size=2
    )
    torch.set_num_threads(1)
    team, data = ProcessTeam(), RankShare(dataset(folder), rank, 2)
    loop = replace(LOOP, epochs=2, checkpoint_every_steps=1)
    weights, steps = {}, []

    def stop_after(last: int):
        def on_step(step: int, metrics: dict[str, float]) -> None:
            steps.append(step)
            if step == last:
                raise Stop

        return on_step

    for name, stop in (("straight", None), ("stopped", 5), ("resumed", None)):
        net = model()
        folder_of_run = folder / ("straight" if name == "straight" else "broken")
        with contextlib.suppress(Stop):
            train(
                net, data, lambda share, net=net: gathered_loss(net, share, SAME_PLACE_KM),
                loop, folder_of_run, "f", progress=False, team=team,
                on_step=stop_after(stop or 0),
            )  # fmt: skip
        weights[name] = net.state_dict()
    torch.save({"weights": weights, "steps": steps}, folder / f"rank{rank}.pt")
    dist.destroy_process_group()


def test_two_processes_stopped_within_an_epoch_resume_from_one_file_as_a_straight_run(
    tmp_path,
) -> None:
    write_inputs(tmp_path)
    mp.start_processes(resume_rank_main, args=(tmp_path,), nprocs=2, join=True, start_method="fork")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [p.name for p in (tmp_path / "broken").iterdir()] == ["last.pt"]  # process 0's
    for saved in ranks:
        # straight: steps 1-6; stopped: 1-5; resumed from step 4's checkpoint: 5 and 6 only
        assert saved["steps"] == [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 5, 6]
        straight, resumed = saved["weights"]["straight"], saved["weights"]["resumed"]
        for name in straight:
            assert torch.equal(straight[name], resumed[name]), name
            assert torch.equal(resumed[name], ranks[0]["weights"]["resumed"][name]), name
