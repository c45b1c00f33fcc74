"""The ablation table: baselines, then each variant's retrieval top-1, + re-rank, + verification,
on validation, demo-street and demo-unseen at 1/25/200/750/2500 km; G3's IMG / IMG+GPS /
IMG+GPS+TEXT rows by changing embeddings.parts alone.

Works on a scratch copy of a project whose inputs are built (after `make demo`): the manifests,
place texts, segmentation cache, backbone and its features are copied, then for each variant
the same step functions the assets call train, embed, index, retrieve, re-rank, verify and
evaluate. The project's own artifacts are never touched. The settings are params.yaml's (eps
chosen on validation); nothing here is tuned on a test benchmark.

    python benchmarks/ablation.py                      # every variant + the G3 parts rows
    python benchmarks/ablation.py --variants g3,dualgeo --no-parts --lmm g3,dualgeo
    python benchmarks/ablation.py --set segmentation.condition_errors=false --label exact-seg

--set SECTION.KEY=VALUE (YAML value, repeatable) changes a setting for the whole table; a changed
`segmentation` section rebuilds the copied segmentation cache first, so the baselines and every
variant see the changed label maps. --label prefixes every row.

--lmm adds, for the variants it names, the "+ LMM" rows of both modes (G3's
geo-diversification joining the verification pool; DualGeo's reasoning deciding) against the
local OpenAI-compatible test server (geoloc_core/lmm/stub_server.py), whose answers come from
the prompt's coordinates.
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
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "data").symlink_to(source / "data")  # manifests name images relative to the root
    for name in INPUTS:
        if not (source / "artifacts" / name).exists():
            raise SystemExit(f"{source}/artifacts/{name} is missing: run `make demo` first")
        shutil.copytree(source / "artifacts" / name, root / "artifacts" / name)
    return params


def apply_overrides(params: dict, settings: list[str]) -> dict:
    """params with each SECTION.KEY=VALUE applied; an unknown section or key is refused."""
    changed = json.loads(json.dumps(params))
    for setting in settings:
        name, _, value = setting.partition("=")
        section, _, key = name.partition(".")
        if not value or section not in changed or key not in changed[section]:
            raise SystemExit(f"--set {setting!r}: expected SECTION.KEY=VALUE of params.yaml")
        changed[section][key] = yaml.safe_load(value)
    return changed


def rebuild_segmentation(paths: ProjectPaths, params: dict) -> None:
    """The scratch copy's segmentation cache under the changed segmentation settings."""
    from geoloc_core.segmentation.step import build_segmentation_shard

    shutil.rmtree(paths.root / "artifacts" / "segmentation")
    section = {**params["segmentation"], "progress": False}
    for key in shard_keys(section["n_shards"]):
        report = build_segmentation_shard(
            paths, section, params["benchmarks"]["names"], key, log=quiet
        )
        if report.problems:
            raise SystemExit(f"segmentation shard {key}: {report.problems}")


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


def lmm_rows(paths: ProjectPaths, params: dict, label: str) -> dict[str, dict]:
    """The decision with each LMM mode, against the local test server."""
    import os

    from geoloc_core.lmm.stub_server import LmmStubServer
    from geoloc_core.steps.lmm import run_lmm_stage

    os.environ.setdefault("GEOLOC_LMM_API_KEY", "local-test-server")
    rows: dict[str, dict] = {}
    with LmmStubServer() as server:
        for mode in ("g3", "dualgeo"):
            section = {**params["lmm"], "provider": "openai", "mode": mode}
            section["base_url"] = server.base_url
            section["cache_dir"] = str(paths.root / "lmm-cache")
            for benchmark in params["benchmarks"]["names"]:
                summary = run_lmm_stage(paths, benchmark, section, progress=False, log=quiet)
                verify_benchmark(paths, benchmark, params["verification"])
                metrics = evaluate_benchmark(paths, benchmark, params["evaluation"])
                metrics.pop("stages")
                rows.setdefault(f"{label} + LMM ({mode} mode)", {})[benchmark] = metrics
                print(
                    f"{label} lmm {mode} {benchmark}: {summary['requests_sent']} requests, "
                    f"{summary['answers_kept']} answers kept, drops {summary['drops_total']}"
                )
            # the other mode's files must not leak into the next mode's decision
            for benchmark in params["benchmarks"]["names"]:
                run_lmm_stage(paths, benchmark, {**section, "provider": "none"}, log=quiet)
    return rows


def quiet(_: str) -> None:
    pass


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
    parser.add_argument(
        "--lmm", default="", help="variants that get the + LMM rows (test server), e.g. g3,dualgeo"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--label", default="", help="prefix of every row label")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="geoloc-ablation-") as folder:
        root = Path(folder)
        source_params = scratch_project(root, args.project.resolve())
        params = apply_overrides(source_params, args.set)
        paths = ProjectPaths(root)
        if params["segmentation"] != source_params["segmentation"]:
            rebuild_segmentation(paths, params)
            print("rebuilt the segmentation cache under the changed settings")
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
            if variant in args.lmm.split(","):
                rows.update(lmm_rows(paths, params, variant))
            if variant == "g3" and not args.no_parts:
                for label, parts in G3_PARTS.items():
                    rows.update(stage_rows(paths, params, parts, f"g3 [{label}]"))
    if args.label:
        rows = {f"{args.label} {label}": values for label, values in rows.items()}
    thresholds = params["evaluation"]["thresholds_km"]
    print(f"% within {' / '.join(f'{t:g}' for t in thresholds)} km")
    print(markdown(rows, benchmarks, thresholds))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
