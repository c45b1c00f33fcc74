"""The ablation table: baselines, then each variant's retrieval top-1, + re-rank, + verification,
on validation, demo-street and demo-unseen at 1/25/200/750/2500 km; G3's IMG / IMG+GPS /
IMG+GPS+TEXT rows by changing embeddings.parts alone.

Works on a scratch copy of a project whose inputs are built (after `make demo`): the manifests,
place texts, segmentation cache, backbone and its features are copied, then for each variant
the same step functions the assets call train, embed, index, retrieve, re-rank, verify and
evaluate. The project's own artifacts are never touched. The settings are params.yaml's (eps
chosen on validation); nothing here is tuned on a test benchmark.

    python benchmarks/ablation.py                      # every variant + the G3 parts rows
    python benchmarks/ablation.py --variants g3,dualgeo --no-parts
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import yaml

from geoloc_core.geo.metrics import DEFAULT_THRESHOLDS_KM
from geoloc_core.models.variants import VARIANTS
from geoloc_core.params import canonical_json, load_params
from geoloc_core.paths import ProjectPaths
from geoloc_core.segmentation.sharding import shard_keys
from geoloc_core.steps.baselines import compute_baselines
from geoloc_core.steps.candidates import build_candidates
from geoloc_core.steps.evaluate import evaluate_benchmark
from geoloc_core.steps.indexing import build_index, embed_reference_shard
from geoloc_core.steps.rerank import rerank_candidates
from geoloc_core.steps.training import train_model
from geoloc_core.steps.verification import verify_benchmark

REPO = Path(__file__).resolve().parent.parent
INPUTS = ("manifests", "texts", "segmentation", "backbone", "features")
G3_PARTS = {
    "IMG": ["frozen"],
    "IMG+GPS": ["frozen", "image_gps"],
    "IMG+GPS+TEXT": ["frozen", "image_gps", "image_text"],
}


def scratch_project(root: Path, source: Path) -> dict:
    """params.yaml and the built inputs of source, copied into root."""
    params = load_params(source)
    params["data"]["root"] = str((source / params["data"]["root"]).resolve())
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for name in INPUTS:
        if not (source / "artifacts" / name).exists():
            raise SystemExit(f"{source}/artifacts/{name} is missing: run `make demo` first")
        shutil.copytree(source / "artifacts" / name, root / "artifacts" / name)
    return params


def stage_rows(paths: ProjectPaths, params: dict, parts, label: str) -> dict[str, dict]:
    """Embed, index, retrieve, re-rank, verify, evaluate: {row label: {benchmark: metrics}}."""
    keys = shard_keys(params["features"]["n_shards"])
    embeddings = {**params["embeddings"], "parts": parts}
    for key in keys:
        embed_reference_shard(paths, embeddings, key, len(keys))
    build_index(paths, params["index"], keys)
    rows: dict[str, dict] = {}
    for benchmark in params["benchmarks"]["names"]:
        build_candidates(paths, benchmark, params["retrieval"], params["index"])
        rerank_candidates(paths, benchmark, params["rerank"])
        verify_benchmark(paths, benchmark, params["verification"])
        metrics = evaluate_benchmark(paths, benchmark, params["evaluation"])
        stages = metrics.pop("stages")
        for stage, name in (("retrieval", "retrieval top-1"), ("rerank", "+ re-rank")):
            rows.setdefault(f"{label} {name}", {})[benchmark] = stages[stage]
        rows.setdefault(f"{label} + verification", {})[benchmark] = metrics
    return rows


def train(paths: ProjectPaths, params: dict, variant: str) -> float:
    model = {**params["model"], "variant": variant}
    start = time.perf_counter()
    train_model(
        paths,
        model,
        params["train"],
        DEFAULT_THRESHOLDS_KM,
        fingerprint="ablation-" + canonical_json([model, params["train"]]),
        progress=False,
    )
    return time.perf_counter() - start


def markdown(rows: dict[str, dict], benchmarks: list[str], thresholds) -> str:
    lines = [
        "| row | " + " | ".join(benchmarks) + " |",
        "|---|" + "---|" * len(benchmarks),
    ]
    for label, by_benchmark in rows.items():
        cells = [
            " / ".join(f"{by_benchmark[b][f'acc_{t:g}km']:.1f}" for t in thresholds)
            for b in benchmarks
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=REPO, help="a project after make demo")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--no-parts", action="store_true", help="skip G3's parts ablation")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="geoloc-ablation-") as folder:
        root = Path(folder)
        params = scratch_project(root, args.project.resolve())
        paths = ProjectPaths(root)
        benchmarks = list(params["benchmarks"]["names"])
        rows: dict[str, dict] = {}
        for benchmark in benchmarks:
            compute_baselines(paths, benchmark, params["baselines"], params["evaluation"])
            table = json.loads((root / "metrics" / "baselines" / f"{benchmark}.json").read_text())
            for name, values in table.items():
                rows.setdefault(f"baseline: {name}", {})[benchmark] = values
        for variant in args.variants.split(","):
            seconds = train(paths, params, variant)
            print(f"trained {variant} in {seconds:.0f} s")
            rows.update(stage_rows(paths, params, "auto", variant))
            if variant == "g3" and not args.no_parts:
                for label, parts in G3_PARTS.items():
                    rows.update(stage_rows(paths, params, parts, f"g3 [{label}]"))
    thresholds = params["evaluation"]["thresholds_km"]
    print(f"% within {' / '.join(f'{t:g}' for t in thresholds)} km")
    print(markdown(rows, benchmarks, thresholds))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
