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

from geoloc_core.dvc_lock import DvcLockError, dvc_write_lock
from geoloc_core.kill_point import kill_point
from geoloc_core.params import ParamsError, find_root, load_params
from geoloc_core.paths import ProjectPaths


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
        if args.command == "lmm-test-server":
            from geoloc_core.lmm.stub_server import serve

            serve("127.0.0.1", args.port, args.latency, args.fault)
            return 0
        return _predict(root, args)
    except (ParamsError, ValueError, FileNotFoundError, DvcLockError) as exc:
        print(f"geoloc: error: {exc}", file=sys.stderr)
        return 2


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
    )
    try:
        return run_predict(root, request)
    except LmmStageError as exc:  # the LMM refused every request: a setup problem
        raise ValueError(str(exc)) from exc


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
