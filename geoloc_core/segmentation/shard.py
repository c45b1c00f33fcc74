"""Computing one shard: batches -> part files -> one shard file.

- Resumable: every finished batch is written atomically as a part file, so a killed run starts
  again at the first batch without a valid part; the provider is not even loaded when every
  part is there.
- Never recomputes a finished shard: a shard file that verifies, was made under the same content
  settings and covers exactly this shard's ids is kept untouched.
- A shard failing its checksum, or made under other settings, is recomputed from scratch. One
  made under the same settings for other ids (a benchmark added) keeps its rows for the ids
  still wanted and computes only the rest (earlier failures are retried).
- Deterministic: rows are in id order and nothing time- or machine-dependent is stored, so a
  resumed shard equals a from-scratch one byte for byte.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from geoloc_core.data.images import ImageFailure
from geoloc_core.data.loader import IN_PROCESS, DecodedBatch, LoaderOptions, decoded_batches
from geoloc_core.segmentation.container import DIGEST_KEY, CorruptFileError, read_meta
from geoloc_core.segmentation.labelmaps import (
    class_histogram,
    downsample_mode,
    invalid_label_reason,
)
from geoloc_core.segmentation.noise import add_label_noise
from geoloc_core.segmentation.providers.base import SegmentationProvider, WorkItem
from geoloc_core.segmentation.settings import SegmentationSettings
from geoloc_core.segmentation.shardfile import ShardRows, read_rows, write_rows
from geoloc_core.segmentation.sharding import shard_file_name

Log = Callable[[str], None]

# Test hook (tests/test_segmentation_resume.py), unset in real runs: with this set to N a run
# writes part file N, then a STOPPED_MARKER file next to it, and waits there to be SIGKILLed.
STOP_AFTER_BATCH_ENV = "GEOLOC_TEST_STOP_AFTER_BATCH"
STOPPED_MARKER = "stopped"


@dataclass(frozen=True)
class ShardOutcome:
    path: Path
    kept: bool  # True: the existing shard file was valid and complete, nothing was computed
    reason: str  # why it was (re)computed, or why it was kept
    images: int  # ids cached in the shard
    failures: list[ImageFailure]
    computed: int  # images run through the provider in this call
    resumed: int  # images taken from part files of an interrupted run
    reused: int  # images taken from the previous shard file (same settings)
    digest: str  # content sha256 (also the Dagster data version)
    bytes: int
    seconds: float


def compute_shard(
    items: Sequence[WorkItem],
    settings: SegmentationSettings,
    shard: int,
    cache_dir: Path,
    parts_root: Path,
    provider_factory: Callable[[], SegmentationProvider],
    reason_root: Path | None = None,
    log: Log = print,
    loader: LoaderOptions = IN_PROCESS,
) -> ShardOutcome:
    """Make cache_dir's file for shard cover items; parts_root keeps the resumable batches;
    loader: the worker processes that decode the batches to compute, ahead of the provider."""
    start = time.perf_counter()
    path = cache_dir / shard_file_name(shard, settings.n_shards)
    fingerprint = settings.fingerprint()
    wanted = [item.id for item in items]
    previous, reason = _previous_rows(path, fingerprint)
    if previous is not None and previous.covered_ids() == sorted(wanted):
        return _outcome(path, True, "valid and complete", previous, 0, 0, 0, start)
    log(f"segmentation shard {path.name}: computing ({reason})")
    for leftover in cache_dir.glob(f".{path.name}.*.partial"):
        leftover.unlink(missing_ok=True)  # a shard write killed before its rename

    reusable = set(previous.ids if previous is not None else []) & set(wanted)
    kept = previous.select(sorted(reusable)) if previous is not None else None
    todo = [item for item in items if item.id not in reusable]
    parts_dir = parts_root / path.stem / fingerprint
    _drop_other_fingerprints(parts_root / path.stem, fingerprint)

    size = settings.batch_size
    batches = [todo[start_at : start_at + size] for start_at in range(0, len(todo), size)]
    part_paths = [parts_dir / f"part-{number:06d}.npz" for number in range(len(batches))]
    finished = [
        _finished_part(part, batch, fingerprint)
        for part, batch in zip(part_paths, batches, strict=True)
    ]
    missing = [number for number, rows in enumerate(finished) if rows is None]
    provider: SegmentationProvider | None = None
    decoded: Iterator[DecodedBatch | None] = iter(())
    if missing:
        provider = provider_factory()
        log(f"segmentation provider: {provider.describe()}")
        decoded = _decoded_ahead(provider, [batches[n] for n in missing], loader)
    parts: list[ShardRows] = []
    computed = resumed = 0
    with tqdm(
        total=len(todo),
        desc=f"segmentation {path.stem}",
        unit="img",
        disable=None if settings.progress else True,
    ) as bar:
        for number, (batch, rows) in enumerate(zip(batches, finished, strict=True)):
            if rows is None:
                assert provider is not None  # made above when a part is missing
                rows = compute_batch(provider, batch, settings, reason_root, next(decoded))
                write_rows(part_paths[number], rows, {"fingerprint": fingerprint, "part": number})
                computed += len(batch)
                if os.environ.get(STOP_AFTER_BATCH_ENV) == str(number + 1):
                    (parts_dir / STOPPED_MARKER).touch()  # the test hook above
                    while True:
                        time.sleep(60)
            else:
                resumed += len(batch)
            parts.append(rows)
            bar.update(len(batch))

    new = ShardRows.concat(parts, settings.output_resolution)
    rows = _in_id_order(kept, new, settings.output_resolution)
    meta = {
        "fingerprint": fingerprint,
        "settings": settings.content(),
        "shard": shard,
        "n_shards": settings.n_shards,
        "images": len(rows.ids),
        "failures": len(rows.failures),
    }
    write_rows(path, rows, meta)
    shutil.rmtree(parts_root / path.stem, ignore_errors=True)
    reused = len(reusable)
    return _outcome(path, False, reason, rows, computed, resumed, reused, start)


def _decoded_ahead(
    provider: SegmentationProvider, batches: Sequence[Sequence[WorkItem]], loader: LoaderOptions
) -> Iterator[DecodedBatch | None]:
    """The batches as the provider wants them, decoded by loader's workers in order; Nones
    for a provider without decoder() (it decodes in predict)."""
    decoder = getattr(provider, "decoder", None)
    if decoder is None:
        return iter([None] * len(batches))
    how = decoder()
    pairs = [[(item.id, item.image) for item in batch] for batch in batches]
    return decoded_batches(pairs, how.decode_one, how.finish, loader)


def compute_batch(
    provider: SegmentationProvider,
    batch: Sequence[WorkItem],
    settings: SegmentationSettings,
    reason_root: Path | None = None,
    decoded: DecodedBatch | None = None,
) -> ShardRows:
    """One batch through the provider (decoded: its images already prepared by a worker), then
    noise, histogram and downsampling per image."""
    prediction = provider.predict(batch) if decoded is None else provider.predict(batch, decoded)
    failures = [ImageFailure(f.id, _portable(f.reason, reason_root)) for f in prediction.failures]
    covered = sorted([*(batch[p].id for p in prediction.positions), *(f.id for f in failures)])
    if covered != sorted(item.id for item in batch):
        raise RuntimeError(
            f"provider {provider.name} must return every image of a batch exactly once, as a "
            f"label map or as a failure; got {covered} for {[item.id for item in batch]}"
        )
    ids, maps, histograms = [], [], []
    for position, native in zip(prediction.positions, prediction.label_maps, strict=True):
        image_id = batch[position].id
        problem = invalid_label_reason(native)
        if problem:
            failures.append(ImageFailure(image_id, f"{provider.name}: {problem}"))
            continue
        noisy = add_label_noise(
            native, settings.label_noise, settings.label_noise_unit, settings.seed, image_id
        )
        ids.append(image_id)
        histograms.append(class_histogram(noisy))
        maps.append(downsample_mode(noisy, settings.output_resolution))
    if not ids:
        empty = ShardRows.empty(settings.output_resolution)
        return ShardRows([], empty.label_maps, empty.histograms, failures)
    return ShardRows(ids, np.stack(maps), np.stack(histograms), failures)


def _previous_rows(path: Path, fingerprint: str) -> tuple[ShardRows | None, str]:
    """The existing shard's rows if they can be reused, else None and why not."""
    if not path.is_file():
        return None, "no shard file yet"
    try:
        rows, meta = read_rows(path)
    except CorruptFileError as exc:
        return None, f"recomputing a corrupted shard: {exc}"
    if meta.get("fingerprint") != fingerprint:
        return None, (
            f"segmentation settings changed (shard made under {meta.get('fingerprint')}, "
            f"now {fingerprint})"
        )
    return rows, "the shard's ids changed (manifests or benchmarks); reusing what still applies"


def _finished_part(path: Path, batch: Sequence[WorkItem], fingerprint: str) -> ShardRows | None:
    """A part file from an interrupted run, if it is intact and holds exactly this batch."""
    if not path.is_file():
        return None
    try:
        rows, meta = read_rows(path)
    except CorruptFileError:
        return None
    if meta.get("fingerprint") != fingerprint:
        return None
    return rows if rows.covered_ids() == sorted(item.id for item in batch) else None


def _in_id_order(kept: ShardRows | None, new: ShardRows, resolution: int) -> ShardRows:
    both = ShardRows.concat([kept, new] if kept is not None else [new], resolution)
    order = sorted(both.ids)
    selected = both.select(order)
    return ShardRows(order, selected.label_maps, selected.histograms, new.failures)


def _drop_other_fingerprints(shard_parts: Path, fingerprint: str) -> None:
    """Parts computed under other settings can never be used again."""
    if shard_parts.is_dir():
        for folder in shard_parts.iterdir():
            if folder.name != fingerprint:
                shutil.rmtree(folder, ignore_errors=True)


def _portable(reason: str, root: Path | None) -> str:
    """Reasons name files relative to the project, so equal inputs give equal shard bytes."""
    return reason.replace(f"{root}/", "") if root is not None else reason


def _outcome(
    path: Path,
    kept: bool,
    reason: str,
    rows: ShardRows,
    computed: int,
    resumed: int,
    reused: int,
    start: float,
) -> ShardOutcome:
    return ShardOutcome(
        path=path,
        kept=kept,
        reason=reason,
        images=len(rows.ids),
        failures=sorted(rows.failures, key=lambda f: f.id),
        computed=computed,
        resumed=resumed,
        reused=reused,
        digest=read_meta(path)[DIGEST_KEY],
        bytes=path.stat().st_size,
        seconds=time.perf_counter() - start,
    )
