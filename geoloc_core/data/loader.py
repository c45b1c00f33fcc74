"""Decoding and preprocessing in worker processes, so that a GPU is not kept waiting on JPEGs.

One JPEG costs ~5 ms to decode and resize on one core, and threads do not help (the GIL), so a
step that decodes in its own process feeds a GPU ~200 images/s. Here a torch DataLoader hands
whole batches to worker processes: each worker runs the caller's own per-image function (the
one the step used in its own process, e.g. images.load_rgb) on every image of a batch, and the
caller's batch function after it (e.g. images.normalize_pixels), while the step runs the model
on the previous batches. Batches come back in their order whatever the number of workers, and
each is computed by the same functions, so what a step writes does not depend on `workers`.

A bad image becomes an ImageFailure by id, as images.load_batch reports it; it never sinks
its batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from geoloc_core.data.decode import DECODE_ERRORS, ImageDecodeError, describe_failure
from geoloc_core.data.images import ImageFailure
from geoloc_core.data.loader_settings import LoaderOptions

Location = Any  # what decode_one reads: a path, a tar member, a predict Photo
DecodeOne = Callable[[Location], np.ndarray]  # one image -> its preprocessed array
FinishBatch = Callable[[np.ndarray], torch.Tensor]  # the stacked arrays -> the model's input


IN_PROCESS = LoaderOptions()  # no worker processes: the default of every caller


@dataclass
class DecodedBatch:
    """One batch: the good images (stacked, in batch order), their positions in the batch, and
    the failures by id. images is empty (0 rows) when every image of the batch failed."""

    number: int
    images: torch.Tensor
    positions: list[int]
    failures: list[ImageFailure]
    failed_positions: list[int]  # the batch position of each failure

    def pin_memory(self) -> DecodedBatch:
        """Called by the DataLoader's pinning thread (pin_memory=True)."""
        pinned = self.images.pin_memory()
        return DecodedBatch(
            self.number, pinned, self.positions, self.failures, self.failed_positions
        )

    def numpy(self) -> np.ndarray:
        return self.images.numpy()

    def image_at(self, position: int) -> np.ndarray:
        """The prepared image at a batch position; ImageDecodeError with the failure's reason
        when it failed (the caller reports it as if it had decoded it itself)."""
        if position in self.positions:
            return self.images[self.positions.index(position)].numpy()
        failed = dict(zip(self.failed_positions, self.failures, strict=True))
        if position not in failed:
            raise IndexError(f"batch {self.number} has no position {position}")
        raise ImageDecodeError(failed[position].reason)


def decode_batch(
    number: int,
    batch: Sequence[tuple[str, Location]],
    decode_one: DecodeOne,
    finish: FinishBatch | None = None,
) -> DecodedBatch:
    """Decode one batch of (id, location); what a worker runs (and the caller, without any)."""
    good: list[np.ndarray] = []
    positions: list[int] = []
    failures: list[ImageFailure] = []
    failed: list[int] = []
    for position, (image_id, location) in enumerate(batch):
        try:
            good.append(decode_one(location))
        except DECODE_ERRORS as exc:
            failures.append(ImageFailure(str(image_id), describe_failure(exc)))
            failed.append(position)
        else:
            positions.append(position)
    if not good:
        return DecodedBatch(number, torch.empty(0, dtype=torch.uint8), positions, failures, failed)
    stack = np.stack(good)
    images = finish(stack) if finish is not None else torch.from_numpy(stack)
    return DecodedBatch(number, images, positions, failures, failed)


class _Batches(Dataset):
    """Batch number -> DecodedBatch; whole batches go to the workers, so the order of the
    batches is the DataLoader's (in order) and no image is split from its batch mates."""

    def __init__(
        self,
        batches: Sequence[Sequence[tuple[str, Location]]],
        decode_one: DecodeOne,
        finish: FinishBatch | None,
    ) -> None:
        self.batches = [list(batch) for batch in batches]
        self.decode_one = decode_one
        self.finish = finish

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, number: int) -> DecodedBatch:
        return decode_batch(number, self.batches[number], self.decode_one, self.finish)


def _identity(batch: Any) -> Any:
    return batch


def decoded_batches(
    batches: Sequence[Sequence[tuple[str, Location]]],
    decode_one: DecodeOne,
    finish: FinishBatch | None = None,
    options: LoaderOptions = IN_PROCESS,
) -> Iterator[DecodedBatch]:
    """Every batch decoded, in the given order. decode_one and finish must be picklable
    (module-level functions, or functools.partial of them) when options.workers > 0."""
    if not batches:
        return iter(())
    dataset = _Batches(batches, decode_one, finish)
    if options.workers == 0:
        return (dataset[number] for number in range(len(dataset)))
    loader = DataLoader(
        dataset,
        batch_size=None,  # each item of the dataset is already a batch
        shuffle=False,
        num_workers=min(options.workers, len(dataset)),
        prefetch_factor=options.prefetch,
        pin_memory=options.pin_memory,
        collate_fn=_identity,
        in_order=True,
    )
    return iter(loader)


def chunks(
    ids: Sequence[str], locations: Sequence[Location], batch_size: int
) -> list[list[tuple[str, Location]]]:
    """(id, location) pairs cut into consecutive batches of batch_size."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    pairs = list(zip(ids, locations, strict=True))
    return [pairs[start : start + batch_size] for start in range(0, len(pairs), batch_size)]
