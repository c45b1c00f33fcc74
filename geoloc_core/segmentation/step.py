"""Step: one shard of the project's segmentation cache (what the segmentation_cache asset calls).

Reads the manifests, computes or keeps the shard, writes its failures next to it as CSV and
verifies the result from disk, so the asset's check reports what a reader will really find.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geoloc_core.ade20k import NUM_CLASSES
from geoloc_core.data.loader_settings import LoaderSettings
from geoloc_core.demo_world.output import write_csv_atomic
from geoloc_core.paths import ProjectPaths
from geoloc_core.segmentation.container import CorruptFileError
from geoloc_core.segmentation.providers import make_provider
from geoloc_core.segmentation.settings import SegmentationSettings
from geoloc_core.segmentation.shard import Log, ShardOutcome, compute_shard
from geoloc_core.segmentation.shardfile import read_rows
from geoloc_core.segmentation.sharding import parse_shard_file_name, shard_index
from geoloc_core.segmentation.worklist import shard_items

HISTOGRAM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class ShardReport:
    outcome: ShardOutcome
    wanted: int  # ids the shard must cover (cached + failed)
    problems: list[str]  # what the verification from disk found wrong; empty when sound
    failures_csv: Path

    def summary(self) -> dict[str, Any]:
        """Numbers for MLflow metrics and Dagster metadata."""
        o = self.outcome
        done = o.computed + o.resumed
        return {
            "images": o.images,
            "failures": len(o.failures),
            "wanted": self.wanted,
            "computed": o.computed,
            "resumed": o.resumed,
            "reused": o.reused,
            "kept": o.kept,
            "seconds": o.seconds,
            "images_per_second": done / o.seconds if done and o.seconds > 0 else 0.0,
            "bytes": o.bytes,
            "bytes_per_image": o.bytes / o.images if o.images else 0.0,
        }


def build_segmentation_shard(
    paths: ProjectPaths,
    section: Mapping[str, Any],
    benchmarks: Sequence[str],
    shard_key: str,
    log: Log = print,
    loader_section: Mapping[str, Any] | None = None,
) -> ShardReport:
    """loader_section (params `loader`): the worker processes that decode the images."""
    settings = SegmentationSettings.from_section(section)
    loader = LoaderSettings.from_section(loader_section) if loader_section else LoaderSettings()
    on_cuda = settings.provider != "demo" and (
        settings.device == "cuda" or (settings.device == "auto" and torch.cuda.is_available())
    )
    shard = shard_index(shard_key, settings.n_shards, "segmentation.n_shards")
    cache_dir = paths.segmentation_dir
    parts_root = paths.checkpoints("segmentation")
    remove_other_layouts(cache_dir, parts_root, settings.n_shards, log)
    items = shard_items(paths, benchmarks, settings.n_shards, shard)
    torch.set_num_threads(settings.num_threads)
    outcome = compute_shard(
        items,
        settings,
        shard,
        cache_dir,
        parts_root,
        lambda: make_provider(settings),
        reason_root=paths.root,
        log=log,
        loader=loader.options(on_cuda),
    )
    failures_csv = outcome.path.with_suffix(".failures.csv")
    write_csv_atomic(failures_csv, ("id", "reason"), [(f.id, f.reason) for f in outcome.failures])
    problems = verify_shard(outcome.path, [item.id for item in items], settings)
    return ShardReport(outcome, len(items), problems, failures_csv)


def verify_shard(path: Path, wanted: Sequence[str], settings: SegmentationSettings) -> list[str]:
    """Re-read the shard: checksum, coverage of every wanted id, shapes, ids and histograms."""
    try:
        rows, meta = read_rows(path)
    except (CorruptFileError, FileNotFoundError) as exc:
        return [str(exc)]
    problems = []
    if meta.get("fingerprint") != settings.fingerprint():
        problems.append(f"{path.name} was made under other settings ({meta.get('fingerprint')})")
    if rows.covered_ids() != sorted(wanted):
        missing = sorted(set(wanted) - set(rows.covered_ids()))
        problems.append(f"{path.name} does not cover {len(missing)} ids, e.g. {missing[:5]}")
    size = settings.output_resolution
    if rows.label_maps.shape[1:] != (size, size):
        problems.append(f"label maps are {rows.label_maps.shape[1:]}, not ({size}, {size})")
    if len(rows.ids) and int(rows.label_maps.max()) >= NUM_CLASSES:
        problems.append(f"a label map holds class id {int(rows.label_maps.max())} >= 150")
    sums = rows.histograms.sum(axis=1)
    if len(rows.ids) and float(np.abs(sums - 1).max()) > HISTOGRAM_TOLERANCE:
        problems.append(f"histograms sum to {float(sums.min())}..{float(sums.max())}, not 1")
    return problems


def remove_other_layouts(cache_dir: Path, parts_root: Path, n_shards: int, log: Log) -> None:
    """After segmentation.n_shards changed, files of the old layout would shadow nothing but
    confuse readers (ids moved shards): remove them, and their resumable parts."""
    for folder in (cache_dir, parts_root):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            parsed = parse_shard_file_name(path.name.split(".")[0] + ".npz")
            if parsed is None or parsed[1] == n_shards:
                continue
            log(f"removing {path} (layout of {parsed[1]} shards, now {n_shards})")
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
