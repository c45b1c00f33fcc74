"""The four model variants side by side on a demo world: training time and retrieval accuracy.

Builds a scratch project in a temporary folder (params.yaml of this checkout, data.root pointed
at the world), runs the steps that make the model's inputs once (manifests, place texts,
segmentation cache, the demo backbone's pretraining, backbone features), then for each of
image-only, g3, dualgeo and dualgeo+text: the wall time of alignment training (heads on cached
features), validation accuracy, and nearest-neighbour accuracy at 1/25/200/750/2500 km on
demo-street and demo-unseen. Prints a table and ratios to image-only.

    python benchmarks/training_variants.py                       # a small generated world
    python benchmarks/training_variants.py --world data/raw/demo # the default demo world

Not a test: it prints numbers and ratios. The project's own artifacts are never touched.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from geoloc_core.data.manifest import read_manifest
from geoloc_core.geo.metrics import DEFAULT_THRESHOLDS_KM, evaluate_predictions
from geoloc_core.models.variants import VARIANTS
from geoloc_core.params import canonical_json, load_params
from geoloc_core.paths import ProjectPaths
from geoloc_core.segmentation.sharding import shard_keys
from geoloc_core.segmentation.step import build_segmentation_shard
from geoloc_core.steps.indexing import build_index, embed_reference
from geoloc_core.steps.manifests import build_benchmark_manifest, build_reference_manifest
from geoloc_core.steps.predict import predict_benchmark
from geoloc_core.steps.texts import build_place_texts
from geoloc_core.steps.training import build_backbone_features, build_backbone_weights, train_model

REPO = Path(__file__).resolve().parent.parent
SMALL_WORLD = {
    "reference_sites": 60,
    "reference_views": 6,
    "validation_views": 1,
    "street_sites": 30,
    "street_views": 2,
    "unseen_sites": 20,
    "unseen_views": 2,
}


def quiet(_: str) -> None:
    pass


def make_project(root: Path, world: Path | None) -> dict:
    """params.yaml of this checkout in root, data.root at world (generated when None)."""
    params = load_params(REPO)
    if world is None:
        from geoloc_core.demo_world.generate import DemoWorldConfig, generate_demo_world

        world = root / "world"
        config = DemoWorldConfig.from_mapping({**params["demo_world"], **SMALL_WORLD})
        generate_demo_world(world, config, progress=False)
    params["data"]["root"] = str(Path(world).resolve())
    params["segmentation"]["progress"] = False
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def build_inputs(paths: ProjectPaths, params: dict) -> dict[str, float]:
    """Everything upstream of alignment_model, timed per step."""
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    build_reference_manifest(paths, params["data"], params["manifest"])
    benchmarks = params["benchmarks"]["names"]
    for name in benchmarks:
        build_benchmark_manifest(paths, params["data"], name, params["manifest"])
    build_place_texts(paths, params["text"])
    for key in shard_keys(params["segmentation"]["n_shards"]):
        build_segmentation_shard(paths, params["segmentation"], benchmarks, key, log=quiet)
    seconds["data_texts_segmentation_s"] = time.perf_counter() - start
    start = time.perf_counter()
    build_backbone_weights(paths, params["backbone"], fingerprint="benchmark")
    seconds["backbone_pretraining_s"] = time.perf_counter() - start
    start = time.perf_counter()
    for key in shard_keys(params["features"]["n_shards"]):
        build_backbone_features(paths, params["features"], benchmarks, key, log=quiet)
    seconds["backbone_features_s"] = time.perf_counter() - start
    return seconds


def run_variant(paths: ProjectPaths, params: dict, variant: str) -> dict[str, float]:
    model = {**params["model"], "variant": variant}
    start = time.perf_counter()
    summary = train_model(
        paths,
        model,
        params["train"],
        DEFAULT_THRESHOLDS_KM,
        fingerprint="benchmark-" + canonical_json([model, params["train"]]),
        progress=False,
    )
    row: dict[str, float] = {"train_s": time.perf_counter() - start}
    row.update({k: v for k, v in summary.items() if k.startswith("val_acc")})
    embed_reference(paths, params["index"])
    build_index(paths, params["index"])
    for benchmark in params["benchmarks"]["names"]:
        predict_benchmark(paths, benchmark, params["retrieval"])
        p = read_manifest(paths.predictions(benchmark))
        scores = evaluate_predictions(p["lat"], p["lon"], p["pred_lat"], p["pred_lon"])
        row.update({f"{benchmark}:{k}": v for k, v in scores.items() if k.startswith("acc")})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, default=None, help="an existing demo world")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="geoloc-variants-") as folder:
        root = Path(folder)
        params = make_project(root, args.world)
        paths = ProjectPaths(root)
        for step, seconds in build_inputs(paths, params).items():
            print(f"{step:28} {seconds:7.1f}")
        rows = {v: run_variant(paths, params, v) for v in args.variants.split(",")}
    pd.set_option("display.width", 250)
    print(pd.DataFrame(rows).T.round(1).to_string())
    if "image-only" in rows:
        base = rows["image-only"]
        for variant, row in rows.items():
            key = next(k for k in row if k.endswith(":acc_25km"))
            print(
                f"{variant:13} training time x{row['train_s'] / base['train_s']:.1f} of "
                f"image-only; {key} {row[key]:.1f} vs {base[key]:.1f}"
            )


if __name__ == "__main__":
    main()
