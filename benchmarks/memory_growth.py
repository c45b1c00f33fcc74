"""Memory: peak RSS of the index build and of training at three sizes, extrapolated to MP16.

Each measurement is one fresh child process that runs the real step on a synthetic project
(`geoloc_core.steps.indexing.build_index`, `geoloc_core.steps.training.train_model`), so its
peak is the step's own plus the interpreter and libraries, nothing the parent held. The parent
writes the inputs first (embedding shards; a backbone-features cache, place texts and a random
demo backbone). The child resets its peak-RSS mark (VmHWM, /proc/self/clear_refs) after its
imports, so the peak read at the end is the step's own and not an import-time transient (the
whole process's peak, `os.wait4`'s ru_maxrss, is kept beside it). It also samples
/proc/self/status every 20 ms to split the peak into anonymous memory (what must fit in RAM)
and file-backed pages (shared libraries and memory-mapped caches: page cache the kernel can
drop), because training memory-maps the features and touches every page in an epoch.

A line a + b·N is fitted through the three sizes (least squares) and evaluated at MP16's
4.7M images. Layout as in the full profile: shards of ~18,359 vectors (MP16 over 256 shards),
at least 4 (the demo's count). Sizes and settings:
- index (flat): params.yaml `index` (the demo's type), demo vector width (frozen + image→text +
  image→GPS = 3 x 128), at 1,800 (the demo), 50,000 and 200,000 vectors;
- index (IVF-PQ, with --ivfpq; not in `make bench`: training its 64 sub-quantizers takes
  30-60 s a point here): the full profile's type with params' PQ and fp16 refine, but 256
  cells trained on a 10,000-vector sample (params: 1024 cells, 100,000; the cells and the
  sample are a fixed cost, not a per-vector one), at 50,000, 100,000 and 200,000 vectors;
- training: params.yaml `model` / `train` (variant g3, batch 128) for 1 epoch (the peak is
  reached in the first epoch; later epochs repeat it), 1 % validation split (MP16-Pro's
  `validation_fraction`), at 1,800 (the demo), 9,000 and 27,000 images.

Writes the curve to benchmarks/memory_growth.png.

    python benchmarks/memory_growth.py [--quick] [--ivfpq]

Not a test: it prints numbers and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SECTION = "7 memory"
MP16 = 4_700_000
SHARD_ROWS = 18_359  # MP16's 4.7M images over the full profile's 256 shards
MIN_SHARDS = 4
PART_DIM = 128
PARTS = ("frozen", "image_text", "image_gps")
TOKENS = 16
IVF_CELLS = 256
IVF_TRAIN = 10_000
VALIDATION_FRACTION = 0.01
CAPTIONS_PER_PLACE = 20
MB = 2**20
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PNG = HERE / "memory_growth.png"
SIZES = {
    "index-flat": (1_800, 50_000, 200_000),
    "index-ivfpq": (50_000, 100_000, 200_000),
    "train": (1_800, 9_000, 27_000),
}
QUICK_SIZES = {
    "index-flat": (1_800, 10_000, 40_000),
    "index-ivfpq": (12_000, 20_000, 40_000),
    "train": (1_800, 3_000, 6_000),
}
TITLES = {
    "index-flat": "index build, flat (params.yaml)",
    "index-ivfpq": "index build, IVF-PQ + fp16 refine",
    "train": "training, g3, 1 epoch",
}


# --- the child: run one step and report its memory ------------------------------------------


class StatusSampler:
    """Peak VmRSS / RssAnon / RssFile of this process, read from /proc/self/status."""

    FIELDS = ("VmRSS", "RssAnon", "RssFile")

    def __init__(self, period_s: float = 0.02):
        self.period_s = period_s
        self.peak = dict.fromkeys(self.FIELDS, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def read(self) -> dict[str, int]:
        values: dict[str, int] = {}
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                name = line.split(":", 1)[0]
                if name in self.FIELDS:
                    values[name] = int(line.split()[1]) * 1024
        return values

    def _loop(self) -> None:
        while not self._stop.is_set():
            for name, value in self.read().items():
                self.peak[name] = max(self.peak[name], value)
            time.sleep(self.period_s)

    def __enter__(self) -> StatusSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for name, value in self.read().items():
            self.peak[name] = max(self.peak[name], value)


def child(kind: str, root: Path, out: Path) -> None:
    import yaml

    from geoloc_core.paths import ProjectPaths

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    spec = json.loads((root / "bench.json").read_text())
    paths = ProjectPaths(root)
    if kind == "train":
        from geoloc_core.geo.metrics import DEFAULT_THRESHOLDS_KM
        from geoloc_core.steps.training import train_model

        def work() -> object:
            return train_model(
                paths,
                params["model"],
                {**params["train"], "epochs": 1},
                DEFAULT_THRESHOLDS_KM,
                fingerprint="bench",
                progress=False,
            )
    else:
        from geoloc_core.segmentation.sharding import shard_keys
        from geoloc_core.steps.indexing import build_index

        section = dict(params["index"], device="cpu")
        if kind == "index-ivfpq":
            section.update(type="ivfpq", ivf_nlist=IVF_CELLS, train_size=IVF_TRAIN)

        def work() -> object:
            return build_index(paths, section, shard_keys(spec["shards"]))

    sampler = StatusSampler()
    baseline = sampler.read()
    reset = reset_peak()
    start = time.perf_counter()
    with sampler:
        work()
    seconds = time.perf_counter() - start
    step_peak = peak_since_reset() if reset else sampler.peak["VmRSS"]
    report = {
        "baseline": baseline,
        "peak": sampler.peak,
        "step_peak": step_peak,
        "exact": reset,
        "seconds": seconds,
    }
    out.write_text(json.dumps(report))


def reset_peak() -> bool:
    """Reset this process's VmHWM (Linux >= 4.0), so the peak read afterwards is the step's own,
    not a transient of the imports before it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_since_reset() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


# --- the parent: synthetic inputs ---------------------------------------------------------------


def shard_count(n: int) -> int:
    return max(MIN_SHARDS, -(-n // SHARD_ROWS))


def fake_model_file(root: Path) -> None:
    """The index step records the model's sha256; any bytes stand in for the weights."""
    from geoloc_core.paths import ProjectPaths

    weights = ProjectPaths(root).model_weights
    weights.parent.mkdir(parents=True, exist_ok=True)
    weights.write_bytes(b"benchmark stand-in for model.pt\n")


def write_embedding_shards(root: Path, n: int, seed: int = 0) -> int:
    """Unit fp16 vectors in shards, with ids and records, as reference_embeddings writes them."""
    import numpy as np
    import pandas as pd

    from geoloc_core.data.manifest import write_manifest
    from geoloc_core.file_hash import file_sha256
    from geoloc_core.paths import ProjectPaths
    from geoloc_core.segmentation.sharding import shard_keys

    paths = ProjectPaths(root)
    fake_model_file(root)
    sha = file_sha256(paths.model_weights)
    rng = np.random.default_rng(seed)
    dim = PART_DIM * len(PARTS)
    shards = shard_count(n)
    bounds = np.linspace(0, n, shards + 1).astype(int)
    for key, a, b in zip(shard_keys(shards), bounds[:-1], bounds[1:], strict=True):
        vectors = rng.standard_normal((b - a, dim), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors_file, ids_file, record_file = paths.embedding_shard(key)
        vectors_file.parent.mkdir(parents=True, exist_ok=True)
        np.save(vectors_file, vectors.astype(np.float16))
        ids = pd.DataFrame(
            {
                "id": [f"r{k:08d}" for k in range(a, b)],
                "lat": rng.uniform(-60, 60, b - a),
                "lon": rng.uniform(-180, 180, b - a),
            }
        )
        write_manifest(ids, ids_file)
        record = {
            "parts": list(PARTS),
            "variant": "g3",
            "model_sha256": sha,
            "shard": key,
            "n_shards": shards,
            "vectors": int(b - a),
            "vectors_sha256": file_sha256(vectors_file),  # the index checks it on load
        }
        record_file.write_text(json.dumps(record))
    return shards


def write_training_inputs(root: Path, n: int, seed: int = 0) -> int:
    """A reference manifest, place texts, a random demo backbone and its features cache."""
    import numpy as np
    import pandas as pd
    import torch

    from geoloc_core.data.manifest import write_manifest
    from geoloc_core.encoders.backbone import FeatureSpec
    from geoloc_core.encoders.clip_towers import TowerSpec, build_clip
    from geoloc_core.file_hash import file_sha256
    from geoloc_core.params import load_params
    from geoloc_core.paths import ProjectPaths
    from geoloc_core.segmentation.sharding import shard_of
    from geoloc_core.training.backbone_weights import (
        BackboneRecord,
        write_record,
    )
    from geoloc_core.training.feature_cache import (
        ShardContent,
        shard_meta,
        spec_fingerprint,
        write_shard,
    )

    paths = ProjectPaths(root)
    rng = np.random.default_rng(seed)
    architecture = load_params(REPO)["backbone"]["architecture"]
    torch.manual_seed(seed)
    towers = build_clip(TowerSpec(architecture, None))
    relative = f"artifacts/backbone/{architecture}-bench.pt"
    ProjectPaths(Path(root)).backbone_dir.mkdir(parents=True, exist_ok=True)
    torch.save(towers.model.state_dict(), root / relative)
    sha = file_sha256(root / relative)
    write_record(root, BackboneRecord(architecture, relative, sha))
    spec = FeatureSpec(architecture, relative, int(np.sqrt(TOKENS)), sha)
    image_size = towers.image_size
    dim = int(towers.embed_dim)

    validation = max(2, round(n * VALIDATION_FRACTION))
    ids = [f"r{k:08d}" for k in range(n + validation)]
    lat, lon = rng.uniform(-60, 60, len(ids)), rng.uniform(-180, 180, len(ids))
    manifest = pd.DataFrame(
        {
            "id": ids,
            "image": [f"data/none/{i}.png" for i in ids],
            "lat": lat,
            "lon": lon,
            "split": ["reference"] * n + ["validation"] * validation,
            "source": "demo",
        }
    )
    write_manifest(manifest, paths.reference_manifest)
    places = max(1, n // CAPTIONS_PER_PLACE)
    captions = [f"A street view photo taken in City {k % places}" for k in range(len(ids))]
    texts = ProjectPaths(Path(root)).place_texts
    texts.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"id": ids, "caption": captions}).to_csv(texts, index=False)

    shards = shard_count(n)
    members: dict[int, list[str]] = {}
    for image_id in ids:
        members.setdefault(shard_of(image_id, shards), []).append(image_id)
    fingerprint = spec_fingerprint(spec, image_size)
    for index in range(shards):
        mine = sorted(members.get(index, []))
        content = ShardContent(
            mine,
            rng.standard_normal((len(mine), dim), dtype=np.float32).astype(np.float16),
            rng.standard_normal((len(mine), TOKENS, dim), dtype=np.float32).astype(np.float16),
            {},
        )
        meta = shard_meta(spec, fingerprint, image_size, content, index, shards)
        write_shard(ProjectPaths(Path(root)).features_dir, index, shards, content, meta)
    return shards


@dataclass(frozen=True)
class Point:
    size: int
    shards: int
    peak: int  # peak resident set during the step (VmHWM reset after the imports), bytes
    anon: int  # sampled peak anonymous memory during the step
    file: int  # sampled peak file-backed resident pages during the step
    baseline: int  # resident after imports, before the step
    process_maxrss: int  # the kernel's peak of the whole child (imports included), os.wait4
    seconds: float


def measure(kind: str, size: int, folder: Path) -> Point:
    root = folder / f"{kind}-{size}"
    root.mkdir(parents=True)
    shards = (write_training_inputs if kind == "train" else write_embedding_shards)(root, size)
    (root / "bench.json").write_text(json.dumps({"shards": shards, "size": size}))
    out = root / "memory.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind, str(root), str(out)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{kind} at {size:,}: the child failed ({process.returncode})")
    report = json.loads(out.read_text())
    return Point(
        size,
        shards,
        report["step_peak"],
        report["peak"]["RssAnon"],
        report["peak"]["RssFile"],
        report["baseline"]["VmRSS"],
        usage.ru_maxrss * 1024,
        report["seconds"],
    )


def fit(sizes: Sequence[int], values: Sequence[float]) -> tuple[float, float]:
    """(intercept bytes, bytes per item) of the least-squares line."""
    import numpy as np

    slope, intercept = np.polyfit(np.asarray(sizes, float), np.asarray(values, float), 1)
    return float(intercept), float(slope)


def draw(curves: dict[str, list[Point]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 4.2))
    for ax, (kind, points) in zip(np.atleast_1d(axes), curves.items(), strict=True):
        sizes = [p.size for p in points]
        grid = np.geomspace(min(sizes), MP16, 60)
        for label, key, marker, colour in (
            ("peak RSS of the step", "peak", "o", "tab:blue"),
            ("peak anonymous", "anon", "s", "tab:red"),
        ):
            values = [getattr(p, key) for p in points]
            a, b = fit(sizes, values)
            line = a + b * grid
            shown = line > 0
            ax.plot(sizes, np.array(values) / MB, marker, color=colour, label=f"{label}: measured")
            ax.plot(
                grid[shown],
                line[shown] / MB,
                "--",
                color=colour,
                alpha=0.6,
                label=f"fit: {b:,.0f} B/item",
            )
            at = a + b * MP16
            if at > 0:
                ax.plot([MP16], [at / MB], "*", color=colour, markersize=13)
                ax.annotate(
                    f"MP16: {at / 2**30:.1f} GiB",
                    (MP16, at / MB),
                    textcoords="offset points",
                    xytext=(-95, 4 if key == "peak" else -12),
                    color=colour,
                    fontsize=8,
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(top=ax.get_ylim()[1] * 2.5)  # room for the MP16 labels
        ax.set_xlabel("reference vectors / images (MP16 = 4.7M)")
        ax.set_ylabel("MiB")
        ax.set_title(TITLES[kind])
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Peak memory of the step, one child process per point; linear fit to MP16")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def estimate_per_item(kind: str) -> tuple[float, str]:
    """What each item must cost at least, to compare the fitted growth with."""
    dim = PART_DIM * len(PARTS)
    if kind == "train":
        # Validation keeps every reference's float32 retrieval vector in a flat index.
        return 4.0 * dim, f"4·d = {4 * dim} B (the validation flat index)"
    from geoloc_core.retrieval.index import index_memory_bytes_per_vector
    from geoloc_core.retrieval.index_settings import IndexSettings

    settings = IndexSettings(type="flat" if kind == "index-flat" else "ivfpq")
    estimate = index_memory_bytes_per_vector(settings, dim)
    return estimate, f"est. {estimate:,.0f} B/vector"


def rows_for(curves: dict[str, list[Point]]):
    from bench_rows import Row

    rows = []
    for kind, points in curves.items():
        sizes = [p.size for p in points]
        a, b = fit(sizes, [p.peak for p in points])
        a_anon, b_anon = fit(sizes, [p.anon for p in points])
        estimate, label = estimate_per_item(kind)
        at_mp16 = (a + b * MP16) / 2**30
        anon_mp16 = (a_anon + b_anon * MP16) / 2**30
        measured = " / ".join(f"{p.peak / MB:,.0f}" for p in points)
        sizes_text = " / ".join(f"{s:,}" for s in sizes)
        rows.append(
            Row(
                SECTION,
                f"step peak RSS MiB, {TITLES[kind]}, at {sizes_text} (anon: "
                + " / ".join(f"{p.anon / MB:,.0f}" for p in points)
                + ")",
                measured,
                f"MP16 4.7M: {at_mp16:,.1f} GiB (anon {anon_mp16:,.1f}); growth {b:,.0f} B/item",
                f"growth {b / estimate:.2f}x of {label}",
                "report (curve: benchmarks/memory_growth.png)",
                "—",
                {
                    "points": [p.__dict__ for p in points],
                    "fit_intercept_bytes": a,
                    "fit_bytes_per_item": b,
                    "fit_anon_intercept_bytes": a_anon,
                    "fit_anon_bytes_per_item": b_anon,
                    "mp16_gib": at_mp16,
                    "mp16_anon_gib": anon_mp16,
                    "estimate_bytes_per_item": estimate,
                },
            )
        )
    return rows


def run(quick: bool = False, png: Path = PNG, ivfpq: bool = False) -> list:
    sizes = dict(QUICK_SIZES if quick else SIZES)
    if not ivfpq:
        del sizes["index-ivfpq"]
    curves: dict[str, list[Point]] = {}
    with tempfile.TemporaryDirectory(prefix="geoloc-memory-") as tmp:
        for kind, kind_sizes in sizes.items():
            curves[kind] = []
            for size in kind_sizes:
                point = measure(kind, size, Path(tmp))
                curves[kind].append(point)
                print(
                    f"{kind:>12} {size:>9,}: step peak RSS {point.peak / MB:7,.0f} MiB "
                    f"(anon {point.anon / MB:,.0f}, file {point.file / MB:,.0f}; after imports "
                    f"{point.baseline / MB:,.0f}, whole process {point.process_maxrss / MB:,.0f})"
                    f", {point.shards} shards, {point.seconds:.1f} s"
                )
    draw(curves, png)
    print(f"curve: {png}")
    return rows_for(curves)


def main(argv: Sequence[str] | None = None) -> None:
    # argparse, not bench_parser: a --child process measures its own memory, so it imports
    # nothing it does not need
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the script")
    parser.add_argument(
        "--ivfpq", action="store_true", help="add the IVF-PQ curve (training it: ~1 min a point)"
    )
    parser.add_argument("--png", type=Path, default=PNG)
    parser.add_argument("--json", help="write the rows here (for benchmarks/run_all.py)")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "ROOT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, root, out = args.child
        child(kind, Path(root), Path(out))
        return
    from bench_rows import print_and_write

    rows = run(args.quick, args.png, args.ivfpq)
    print_and_write("Memory: peak RSS of one process per point", rows, args.json)


if __name__ == "__main__":
    main()
