"""training/loop.seed_everything seeds torch's and numpy's global generators.

Today's training draws nothing from them (the model seeds itself, the shuffle has its own
torch.Generator, dropout is 0), so even the byte-identical DVC comparison would not notice an
unseeded run. This pins the function's contract, so that a layer drawing from the global
generators later (dropout, augmentation) stays reproducible."""

from __future__ import annotations

import numpy as np
import torch

from geoloc_core.training.loop import seed_everything


def test_seed_everything_makes_the_global_generators_repeat():
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        seed_everything(1234, 1)
        first = torch.rand(8), np.random.rand(8)
        torch.rand(100), np.random.rand(100)  # whatever ran in between
        seed_everything(1234, 1)
        again = torch.rand(8), np.random.rand(8)
        seed_everything(4321, 1)
        other = torch.rand(8)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
    assert torch.equal(first[0], again[0]), "torch's global generator was not seeded"
    assert np.array_equal(first[1], again[1]), "numpy's global generator was not seeded"
    assert not torch.equal(first[0], other)  # the seed is the one asked for
