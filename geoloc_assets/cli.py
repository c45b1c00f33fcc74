"""The `geoloc` command: generate the demo world, materialize assets, show staleness, predict.

Dagster is imported only by the commands that orchestrate, so `geoloc predict` starts fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from geoloc_core.dvc_lock import DvcLockError, dvc_write_lock
from geoloc_core.kill_point import kill_point
from geoloc_core.params import ParamsError, find_root, load_params
from geoloc_core.paths import ProjectPaths

if TYPE_CHECKING:
    from geoloc_assets.resources import TrackedRun


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="geoloc", description=__doc__)
    parser.add_argument("--root", type=Path, default=None, help="project root (default: auto)")
    sub = parser.add_subparsers(dest="command", required=True)

    world = sub.add_parser("demo-world", help="generate the demo world into params data.root")
    world.add_argument("--out", type=Path, default=None)
    world.add_argument("--if-missing", action="store_true", help="do nothing if it exists")

    mat = sub.add_parser("materialize", help="materialize asset groups or assets with Dagster")
    mat.add_argument("--group", action="append", default=[], help="asset group (repeatable)")
    mat.add_argument("--asset", action="append", default=[], help="asset name (repeatable)")
    mat.add_argument("--all", action="store_true", help="every asset")
    mat.add_argument("--stale", action="store_true", help="only what is stale or missing")
    mat.add_argument(
        "--benchmark",
        action="append",
        default=[],
        help="benchmark partition (default: params benchmarks.names)",
    )
    mat.add_argument(
        "--parallel",
        type=int,
        default=None,
        metavar="RUNS",
        help="one Dagster backfill: a run per partition, up to RUNS at once, each on the "
        "multiprocess executor; GPU steps share the gpu pool (see docs/deployment.md)",
    )

    profile = sub.add_parser(
        "profile",
        help="switch params.yaml to a profile (full: profiles/full.yaml's overrides; demo: "
        "params.yaml's own values, byte for byte); without a name, show the one in force",
    )
    profile.add_argument("name", nargs="?", default=None, metavar="demo|full")

    preflight = sub.add_parser(
        "preflight",
        help="for the settings in force: weights, data, GPU, free disk and expected time per "
        "stage; exit 1 with one line per problem (and its fix) when the run cannot finish",
    )
    preflight.add_argument("--json", action="store_true", help="the report as JSON")

    sub.add_parser("status", help="which assets Dagster considers stale, and why")
    sub.add_parser(
        "dvc-yaml",
        help="write dvc.yaml from the stage registry (geoloc_core/pipeline/registry.py)",
    )
    sub.add_parser(
        "schema", help="write params.schema.json, the JSON Schema of params.yaml, from the models"
    )

    pred = sub.add_parser(
        "predict",
        help="geolocate photos with the trained artifacts and the current params: ranked "
        "candidates with place names, the decision marked (docs/predict.md)",
    )
    pred.add_argument(
        "images", nargs="+", metavar="PHOTO|FOLDER|GLOB", help="image files, folders, patterns"
    )
    pred.add_argument("--top-k", type=int, default=5, help="candidates shown per photo")
    pred.add_argument("--all-views", action="store_true",
                      help="list every reference view, not one entry per place")
    pred.add_argument("--json", action="store_true", help="one JSON document on stdout")
    pred.add_argument("--map", type=Path, default=None, metavar="OUT.png",
                      help="draw the candidates (and the EXIF position) on a map")
    pred.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    pred.add_argument("--model", type=Path, default=None, metavar="IMPORT_DIR",
                      help="predict with an imported GeoCLIP (artifacts/imports/geoclip): its "
                      "gallery is the only pool (docs/imports.md)")
    _add_import_parser(sub)

    serve = sub.add_parser(
        "serve",
        help="run a server command (make ui, make mlflow-ui) in a process group of its own that "
        "Ctrl-C or SIGTERM stops within seconds, leaving no process behind",
    )
    serve.add_argument(
        "--reload-dagster",
        metavar="URL",
        default=None,
        help="the Dagster webserver to reload when params.yaml or the code changes",
    )
    serve.add_argument("server_command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")

    server = sub.add_parser(
        "lmm-test-server",
        help="an OpenAI-compatible server on 127.0.0.1 whose answers come from the prompt's "
        "coordinates, to try the LMM path without a model",
    )
    server.add_argument("--port", type=int, default=8000)
    server.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    server.add_argument(
        "--fault",
        action="append",
        default=[],
        help="fault applied to every request (repeatable): 429, 500, hang, malformed, prose, "
        "out_of_range, integer, fewer_choices",
    )

    _add_fetch_parser(sub)
    export = sub.add_parser(
        "export-clip",
        help="write the project's frozen towers (open_clip, as backbone_weights recorded them) "
        "as a transformers CLIP checkpoint directory: config.json, model.safetensors, "
        "preprocessor_config.json",
    )
    export.add_argument("out", type=Path, metavar="DIR", help="the directory to write")

    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*is currently in (beta|preview)")
    try:
        root = (args.root or find_root()).resolve()
        if args.command == "demo-world":
            return _demo_world(root, args)
        if args.command == "materialize":
            # before any work, and for all of it: a `dvc repro` beside it must not run stages
            with dvc_write_lock(root, materialize_outputs(root)):
                kill_point("dvc-lock-held")
                return _materialize(root, args)
        if args.command == "status":
            return _status(root)
        if args.command == "profile":
            return _profile(root, args)
        if args.command == "preflight":
            return _preflight(root, args)
        if args.command == "dvc-yaml":
            return _dvc_yaml(root)
        if args.command == "schema":
            from geoloc_core.settings_tree import write_schema

            print(write_schema(root))
            return 0
        if args.command == "serve":
            from geoloc_assets.serve import serve

            command = args.server_command
            command = command[1:] if command[:1] == ["--"] else command
            return serve(command, root, args.reload_dagster)
        if args.command == "fetch":
            return _fetch(root, args)
        if args.command == "export-clip":
            return _export_clip(root, args.out)
        if args.command == "import":
            return _import(root, args)
        if args.command == "lmm-test-server":
            from geoloc_core.lmm.stub_server import serve

            serve("127.0.0.1", args.port, args.latency, args.fault)
            return 0
        return _predict(root, args)
    except (ParamsError, ValueError, FileNotFoundError, DvcLockError) as exc:
        print(f"geoloc: error: {exc}", file=sys.stderr)
        return 2


def _export_clip(root: Path, out: Path) -> int:
    from geoloc_core.encoders.clip_convert import save_transformers_clip
    from geoloc_core.training.backbone_weights import load_towers, read_record

    towers = load_towers(root, read_record(root))
    print(f"transformers CLIP checkpoint written: {save_transformers_clip(towers, out)}")
    return 0


def _demo_world(root: Path, args: argparse.Namespace) -> int:
    from geoloc_core.demo_world.generate import DemoWorldConfig, generate_demo_world

    params = load_params(root)
    out = args.out or root / params["data"]["root"]
    if args.if_missing and (out / "manifest.csv").is_file():
        print(f"demo world already at {out}; skipping (delete it to regenerate)")
        return 0
    with dvc_write_lock(root, [out]):
        manifest = generate_demo_world(out, DemoWorldConfig.from_section(params["demo_world"]))
    print(f"demo world written: {manifest}")
    return 0


def materialize_outputs(root: Path) -> list[Path]:
    """What a materialize may write that DVC tracks (dvc.yaml's outs and metrics lie in these):
    what it holds DVC's write lock on when started by hand."""
    paths = ProjectPaths(root)
    return [paths.artifacts, root / "metrics", paths.reports]


def _materialize(root: Path, args: argparse.Namespace) -> int:
    from geoloc_assets.definitions import definitions_for
    from geoloc_assets.runner import (
        materialize_in_parallel,
        materialize_selection,
        observe_raw_data,
        project_instance,
        reads_raw_data,
        selected_keys,
    )
    from geoloc_assets.staleness import asset_states

    defs = definitions_for(root)  # first: it refuses bad params before anything reads them
    params = load_params(root)
    configured = list(params["benchmarks"]["names"])
    unknown = [b for b in args.benchmark if b not in configured]
    if unknown:
        raise ValueError(f"--benchmark {unknown}: not in params benchmarks.names {configured}")
    benchmarks = args.benchmark or configured
    instance = project_instance(root)
    groups = args.group
    if args.all or not (args.group or args.asset):
        groups = sorted(defs.resolve_asset_graph().all_group_names)
    keys = selected_keys(defs, groups, args.asset)
    if args.stale or reads_raw_data(defs, keys):
        observe_raw_data(defs, instance)
    if args.stale:
        # asset_states carries staleness all the way down, so this is the downstream closure
        pending = {s.asset for s in asset_states(defs, instance, benchmarks) if s.status != "fresh"}
        keys = [k for k in keys if k.to_user_string() in pending]
    if not keys:
        print("nothing to materialize: everything selected is fresh")
        return 0
    if args.parallel is None:
        outcomes = materialize_selection(defs, instance, keys, benchmarks)
    else:
        outcomes = materialize_in_parallel(root, defs, instance, keys, benchmarks, args.parallel)
    for outcome in outcomes:
        where = f"[{outcome.partition}]" if outcome.partition else ""
        state = "ok" if outcome.success else "FAILED"
        print(f"{state:6} {', '.join(outcome.assets)}{where}  (dagster run {outcome.run_id})")
    return 0 if all(o.success for o in outcomes) else 1


def _status(root: Path) -> int:
    import dagster as dg

    from geoloc_assets.definitions import definitions_for
    from geoloc_assets.recorded import RecordedSettings
    from geoloc_assets.runner import project_instance
    from geoloc_assets.staleness import asset_states

    params = load_params(root)
    defs, instance = definitions_for(root), project_instance(root)
    states = asset_states(defs, instance, params["benchmarks"]["names"])
    recorded = RecordedSettings(instance, defs.resolve_asset_graph())
    for state in states:
        name = state.asset + (f"[{state.partition}]" if state.partition else "")
        line = f"{state.status:8} {name}"
        if state.causes:
            line += f"  <- {'; '.join(state.causes)}"
        if state.status == "fresh":  # fresh, yet made with settings params.yaml does not hold
            key = dg.AssetKey(state.asset)
            drift = recorded.drift(key, recorded.record(key, state.partition))
            if drift:
                line += f"  {drift.status_note()}"
        print(line)
    return 0


def _profile(root: Path, args: argparse.Namespace) -> int:
    """`geoloc profile [demo|full]`: the overrides written into (or taken out of) params.yaml,
    which Dagster, DVC and the CLI all read."""
    from geoloc_core.profiles import active_profile, switch

    if args.name is None:
        print(active_profile((root / "params.yaml").read_text()))
        return 0
    before, overrides = switch(root, args.name)
    keys = ", ".join(o.key for o in overrides)
    print(f"params.yaml: profile {before} -> {args.name}" + (f" ({keys})" if keys else ""))
    return 0


def _preflight(root: Path, args: argparse.Namespace) -> int:
    """`geoloc preflight`: can the settings in force finish here? (geoloc_core/preflight/)"""
    from geoloc_core.preflight import run_preflight

    report = run_preflight(root)
    print(report.as_json() if args.json else report.as_text())
    return 0 if report.ready else 1


def _dvc_yaml(root: Path) -> int:
    from geoloc_core.params_check import validate_params
    from geoloc_core.pipeline.dvc_stages import write

    params = load_params(root)
    validate_params(params)
    print(f"wrote {write(root, params)}")
    return 0


def _predict(root: Path, args: argparse.Namespace) -> int:
    """geoloc_core's predict path; dagster is never imported on the way (fast start-up)."""
    from geoloc_core.lmm.errors import LmmStageError
    from geoloc_core.predict.command import PredictRequest, run_predict

    request = PredictRequest(
        arguments=list(args.images),
        top_k=args.top_k,
        as_json=args.json,
        map_out=args.map,
        progress=not args.no_progress,
        all_views=args.all_views,
        model=args.model,
    )
    try:
        return run_predict(root, request)
    except LmmStageError as exc:  # the LMM refused every request: a setup problem
        raise ValueError(str(exc)) from exc


def _add_fetch_parser(sub: argparse._SubParsersAction) -> None:
    fetch = sub.add_parser(
        "fetch",
        help="download datasets and published weights from the catalogue "
        "(geoloc_core/fetch/catalogue.yaml): resumable, checksummed, pinned in fetch.lock; "
        "then a data report, data.dvc and the licence terms (docs/data.md)",
    )
    fetch.add_argument("names", nargs="*", metavar="NAME", help="catalogue entries (--list)")
    fetch.add_argument("--list", action="store_true", help="list the catalogue and exit")
    fetch.add_argument("--catalogue", type=Path, default=None, metavar="FILE",
                       help="another catalogue file (a mirror, a local copy)")
    fetch.add_argument("--no-report", action="store_true", help="skip the data report")
    fetch.add_argument("--no-dvc", action="store_true", help="do not run `dvc add data/raw`")


def _fetch(root: Path, args: argparse.Namespace) -> int:
    from geoloc_core.fetch.command import run_fetch

    return run_fetch(
        args.names,
        root,
        catalogue_file=args.catalogue,
        report=not args.no_report,
        dvc=not args.no_dvc,
        list_only=args.list,
    )
def _add_import_parser(sub: argparse._SubParsersAction) -> None:
    """`geoloc import g3|geoclip`: published weights as the project's artifacts."""
    imp = sub.add_parser(
        "import", help="turn published weights (G3, GeoCLIP) into the project's artifacts, "
        "registered in MLflow (docs/imports.md)"
    )
    kinds = imp.add_subparsers(dest="kind", required=True)
    g3 = kinds.add_parser("g3", help="G3's g3.pth (and its FAISS index) -> artifacts/imports/g3")
    g3.add_argument("checkpoint", type=Path, metavar="CHECKPOINT", help="G3's g3.pth")
    g3.add_argument("--clip-config", type=Path, default=None, metavar="CONFIG.json",
                    help="transformers CLIPConfig of the checkpoint's CLIP (default: "
                    "openai/clip-vit-large-patch14's)")
    g3.add_argument("--index", type=Path, default=None, metavar="G3.index",
                    help="G3's FAISS index (with --order)")
    g3.add_argument("--order", type=Path, default=None, metavar="MP16_Pro_filtered.csv",
                    help="the CSV whose row order the index follows")
    geoclip = kinds.add_parser(
        "geoclip", help="the geoclip wheel's files -> artifacts/imports/geoclip"
    )
    geoclip.add_argument("--clip", default=None, metavar="DIR|HUB_ID",
                         help="the CLIP image tower: a transformers directory or a hub id "
                         "(default: openai/clip-vit-large-patch14)")
    geoclip.add_argument("--gallery", type=Path, default=None, metavar="CSV",
                         help="LAT,LON points to rank (default: the wheel's 100K gallery)")
    geoclip.add_argument("--serve", action="store_true",
                         help="also log it as a served model (MLflow pyfunc), registered as "
                         "geoloc-geoclip")


def _import(root: Path, args: argparse.Namespace) -> int:
    """Run the import, then record it in MLflow: the sha256 of every source and output as
    params, the outputs as artifacts (the model under `model`, registered)."""
    from geoloc_core.imports.clip_config import VIT_L14_NAME

    def log(message: str) -> None:
        print(message, file=sys.stderr)

    if args.kind == "g3":
        from geoloc_core.encoders.settings import FeaturesConfig
        from geoloc_core.imports.g3 import import_g3
        from geoloc_core.params import section

        features = FeaturesConfig.from_section(section(load_params(root), "features"))
        done = import_g3(
            root, args.checkpoint, args.clip_config, args.index, args.order,
            token_grid=features.token_grid, log=log,
        )
    else:
        from geoloc_core.imports.geoclip import import_geoclip

        done = import_geoclip(root, args.clip or VIT_L14_NAME, args.gallery, log=log)
    url = _log_import_run(
        root, args.kind, done.folder, done.record, serve=getattr(args, "serve", False)
    )
    print(f"imported {args.kind} into {done.folder}; MLflow run {url}")
    return 0


# Larger outputs (a ViT-L backbone, G3's index) are recorded by digest, not copied into MLflow.
LOGGED_FILE_LIMIT = 512 << 20


def _log_import_run(
    root: Path, kind: str, folder: Path, record: dict, serve: bool = False
) -> str:
    from geoloc_assets.resources import MlflowTracker, TrackedRun

    paths = ProjectPaths(root)
    tracker = MlflowTracker(
        tracking_uri=os.environ.get("MLFLOW_TRACKING_URI", paths.tracking_uri),
        artifact_root=str(paths.mlruns / "artifacts"),
        experiment=load_params(root)["tracking"]["experiment"],
    )
    client = tracker.client()
    experiment = tracker.experiment_id(client)
    run_id = client.create_run(
        experiment, run_name=f"import {kind}", tags={"geoloc.import": kind}
    ).info.run_id
    url = tracker.run_url(experiment, run_id)
    try:
        _fill_import_run(root, kind, folder, record, serve, TrackedRun(client, run_id, url))
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return url


def _fill_import_run(
    root: Path, kind: str, folder: Path, record: dict, serve: bool, run: TrackedRun
) -> None:
    """The import run's params (source digests and paths), tags (output digests), artifacts,
    registered model (G3) and served model (GeoCLIP with --serve)."""
    from mlflow.entities import Param, RunTag

    from geoloc_core.pipeline.alignment_model import register_model

    client, run_id = run.client, run.run_id
    params = [Param(f"source.{name}.sha256", s.get("sha256", s.get("name", "")))
              for name, s in record["sources"].items()]
    params += [Param(f"source.{name}.path", s["path"])
               for name, s in record["sources"].items() if "path" in s]
    tags = [RunTag(f"output.{name}.sha256", digest) for name, digest in record["outputs"].items()]
    client.log_batch(run_id, params=params, tags=tags)
    client.log_artifact(run_id, str(folder / "import.json"))
    for name in record["outputs"]:
        file = folder / name
        if file.stat().st_size <= LOGGED_FILE_LIMIT:
            parent = Path(name).parent
            client.log_artifact(run_id, str(file), None if parent == Path() else str(parent))
    if kind == "g3":  # the alignment model, registered as a trained one is
        register_model(run, "g3", folder / "model")
    if serve:
        from geoloc_core.imports.geoclip_serving import log_geoclip_served_model
        from geoloc_core.params import section

        text = section(load_params(root), "text")
        uri = log_geoclip_served_model(root, folder, text, client, run_id)
        client.set_tag(run_id, "geoloc.registered_model", uri)


def run() -> None:
    """The `geoloc` console script: main(), then exit without the interpreter's teardown.
    Finalizing what a materialize loads (dagster, mlflow's sqlalchemy store, torch) takes ~3 s
    on 2 cores, paid again by every DVC stage; by then every run has ended and every record is
    committed, and the streams and log handlers are flushed here."""
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    raise SystemExit(main())
