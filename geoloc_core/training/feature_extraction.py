"""Computing one shard of the backbone-features cache: decode with the tower's own transform
(CLIP's preprocessing), run the frozen tower, store in the spec's precision (fp16 or fp32).

Which images: every id of the reference manifest (reference + validation) and of the configured
benchmarks' manifests, so training, indexing and querying all read features from one cache and
never re-run the backbone. A shard already made by the same backbone for the same ids is kept,
unless it no longer reads back as written (its digest): then it is recomputed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from geoloc_core.data.loader import IN_PROCESS, LoaderOptions, chunks, decoded_batches
from geoloc_core.data.manifest import read_manifest
from geoloc_core.encoders.backbone import FeatureSpec, backbone_outputs
from geoloc_core.encoders.clip_towers import ClipTowers
from geoloc_core.paths import ProjectPaths
from geoloc_core.segmentation.sharding import shard_of
from geoloc_core.training.feature_cache import (
    DTYPES,
    ShardContent,
    read_meta,
    shard_dir_name,
    shard_meta,
    shard_problem,
    spec_fingerprint,
    write_shard,
)

Log = Callable[[str], None]


@dataclass(frozen=True)
class WorkItem:
    id: str
    image: Path


def manifest_items(paths: ProjectPaths, benchmarks: Sequence[str]) -> list[WorkItem]:
    """(id, image) of the reference manifest and every benchmark manifest, one per id."""
    frames = [read_manifest(paths.reference_manifest)[["id", "image"]]]
    for name in benchmarks:
        file = paths.benchmark_manifest(name)
        if not file.is_file():
            raise FileNotFoundError(
                f"{file} is missing: materialize benchmark_manifest[{name}] before "
                "backbone_features"
            )
        frames.append(read_manifest(file)[["id", "image"]])
    rows = pd.concat(frames, ignore_index=True).drop_duplicates("id")
    return [WorkItem(str(r.id), paths.root / r.image) for r in rows.itertuples(index=False)]


def shard_items(items: Sequence[WorkItem], n_shards: int, shard: int) -> list[WorkItem]:
    mine = [item for item in items if shard_of(item.id, n_shards) == shard]
    return sorted(mine, key=lambda item: item.id)


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA device")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def extract_features(
    towers: ClipTowers,
    items: Sequence[WorkItem],
    token_grid: int,
    batch_size: int,
    progress: bool = False,
    precision: str = "fp16",
    loader: LoaderOptions = IN_PROCESS,
) -> ShardContent:
    """Run the frozen image tower over items (sorted by id); failures are kept by id. Images are
    decoded and normalised by the towers' one transform, in loader's worker processes while the
    tower runs."""
    dtype = DTYPES[precision]
    device = next(towers.model.parameters()).device
    ids: list[str] = []
    pooled: list[np.ndarray] = []
    tokens: list[np.ndarray] = []
    failures: dict[str, str] = {}
    batches = chunks([i.id for i in items], [i.image for i in items], batch_size)
    decoded = decoded_batches(
        batches,
        towers.transform.load,
        towers.transform.normalize,
        loader,
    )
    bar = tqdm(decoded, total=len(batches), desc="features", unit="batch",
               disable=None if progress else True)
    for batch in bar:
        failures.update({f.id: f.reason for f in batch.failures})
        if not batch.positions:
            continue
        pixels = batch.images.to(device, non_blocking=True)
        outputs = backbone_outputs(towers.model.visual, pixels, token_grid)
        chunk = batches[batch.number]
        ids += [chunk[p][0] for p in batch.positions]
        pooled.append(outputs.pooled.cpu().numpy().astype(dtype))
        tokens.append(outputs.tokens.cpu().numpy().astype(dtype))
    dim = int(towers.embed_dim)
    return ShardContent(
        ids,
        np.concatenate(pooled) if pooled else np.zeros((0, dim), dtype),
        np.concatenate(tokens) if tokens else np.zeros((0, token_grid**2, dim), dtype),
        failures,
    )


@dataclass(frozen=True)
class ShardOutcome:
    path: Path
    kept: bool
    images: int
    failures: dict[str, str]
    digest: str
    seconds: float


def compute_feature_shard(
    directory: Path,
    towers_factory: Callable[[], ClipTowers],
    spec: FeatureSpec,
    image_size: int,
    items: Sequence[WorkItem],
    shard: int,
    n_shards: int,
    batch_size: int,
    log: Log = print,
    loader: LoaderOptions = IN_PROCESS,
) -> ShardOutcome:
    """Make directory's shard cover items, keeping an existing one made the same way."""
    start = time.perf_counter()
    fingerprint = spec_fingerprint(spec, image_size)
    target = Path(directory) / shard_dir_name(shard, n_shards)
    wanted = sorted(item.id for item in items)
    if (target / "meta.json").is_file():
        problem = shard_problem(target)
        if problem is not None:
            log(f"backbone features {target.name}: recomputing, {problem}")
        else:
            meta = read_meta(target)
            covered = sorted([*meta.get("ids", []), *meta.get("failures", {})])
            if meta.get("fingerprint") == fingerprint and covered == wanted:
                log(f"backbone features {target.name}: kept (same backbone, same ids)")
                return ShardOutcome(
                    target, True, len(meta["ids"]), meta["failures"], meta["digest"], 0.0
                )
    towers = towers_factory()
    if towers.image_size != image_size:
        raise ValueError(f"towers take {towers.image_size}px images, the spec says {image_size}")
    content = extract_features(
        towers, items, spec.token_grid, batch_size, progress=True, precision=spec.precision,
        loader=loader,
    )
    meta = shard_meta(spec, fingerprint, image_size, content, shard, n_shards)
    path = write_shard(directory, shard, n_shards, content, meta)
    return ShardOutcome(
        path,
        False,
        len(content.ids),
        content.failures,
        content.digest(),
        time.perf_counter() - start,
    )
