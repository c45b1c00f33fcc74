"""`geoloc predict` cold start: one photo, a fresh process each time, with where the time goes.

The command itself (`geoloc predict --json PHOTO`, the console script's code path) runs
`--repeats` times, each in a new interpreter, on a project whose artifacts are built (`make
demo`; default: this checkout); the row reports the median wall time against the issue's goal
(at most 4 s). A probe, run as many times in fresh processes too, times the same path in
phases — settings and the artifacts check, the libraries (torch, FAISS, pandas), the artifacts
(the towers, the index, the place names), the first photo (scikit-learn's DBSCAN
included), the output — and the median of each phase is the breakdown. `--map` is timed once
for context. The load average is recorded around the runs: on a shared machine the neighbours'
work lengthens every phase.

    python benchmarks/predict_cold_start.py [--root PROJECT] [--photo FILE] [--repeats 3]
"""

from __future__ import annotations

from bench_rows import reexec_without_blas_overrides

if __name__ == "__main__":
    reexec_without_blas_overrides()

import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_rows import Row, bench_parser, print_and_write, verdict

SECTION = "9 predict"
GOAL_S = 4.0
REPO = Path(__file__).resolve().parent.parent

# the `geoloc` console script's own entry point (its exit skips the interpreter's teardown)
COMMAND = "from geoloc_assets.cli import run\nrun()\n"

# The command's path in phases (geoloc_core/predict/command.py, step by step), each timed.
PROBE = r"""
import json, sys, time
marks = [("start", time.perf_counter())]
def mark(name):
    marks.append((name, time.perf_counter()))
from pathlib import Path
root, photo = Path(sys.argv[1]), Path(sys.argv[2])
from geoloc_core.params import load_params
from geoloc_core.paths import ProjectPaths
from geoloc_core.predict.files import PredictFiles
from geoloc_core.predict.photos import Photo, read_photo
from geoloc_core.predict.settings import PredictSettings
settings = PredictSettings.from_params(load_params(root))
files = PredictFiles.of_project(root, settings)
mark("settings and artifacts check")
from geoloc_core.predict.predictor import Predictor
mark("libraries (torch, FAISS, pandas)")
predictor = Predictor(files, settings, ProjectPaths(root))
mark("artifacts (towers, index, place names)")
results = predictor.predict([read_photo(Photo(str(photo), path=photo))])
mark("first photo (scikit-learn's DBSCAN included)")
text = json.dumps([r.as_dict(5) for r in results])
mark("output")
phases = {b[0]: b[1] - a[1] for a, b in zip(marks, marks[1:])}
print("PHASES " + json.dumps(phases), file=sys.stderr)
print("MODULES " + json.dumps(sorted(
    m for m in ("open_clip", "torchvision", "transformers", "timm", "huggingface_hub",
                "matplotlib", "dagster", "mlflow")
    if m in sys.modules)), file=sys.stderr)
"""


def default_photo(root: Path) -> Path:
    """The first image of the validation benchmark's manifest (a demo photo)."""
    manifest = root / "artifacts" / "manifests" / "benchmarks" / "validation.csv"
    if not manifest.is_file():
        raise SystemExit(f"no {manifest}: build the project first (`make demo`), or pass --photo")
    with manifest.open(newline="") as handle:
        first = next(csv.DictReader(handle))
    return root / first["image"]


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GEOLOC_ROOT"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


def cold_command(root: Path, photo: Path, extra: list[str]) -> float:
    """Wall seconds of one `geoloc predict --json PHOTO` in a fresh interpreter."""
    argv = ["--root", str(root), "predict", "--no-progress", "--json", str(photo), *extra]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", COMMAND, *argv], env=environment(), capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"geoloc predict failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall


def cold_probe(root: Path, photo: Path) -> tuple[dict[str, float], list[str]]:
    """One fresh process through the command's phases: seconds per phase, heavy modules seen."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(root), str(photo)],
        env=environment(),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the probe failed ({done.returncode}):\n{done.stderr[-2000:]}")
    lines = done.stderr.splitlines()
    phases = json.loads(next(x for x in lines if x.startswith("PHASES "))[7:])
    modules = json.loads(next(x for x in lines if x.startswith("MODULES "))[8:])
    return phases, modules


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--root", type=Path, default=REPO, help="a built project (make demo)")
    parser.add_argument("--photo", type=Path, default=None, help="default: a validation photo")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = args.root.resolve()
    photo = args.photo or default_photo(root)
    load_before = os.getloadavg()
    cold_command(root, photo, [])  # the files into the page cache: "cold" means the process
    runs = [cold_command(root, photo, []) for _ in range(args.repeats)]
    probes = [cold_probe(root, photo) for _ in range(args.repeats)]
    with tempfile.TemporaryDirectory(prefix="geoloc-bench-map-") as scratch:
        with_map = cold_command(root, photo, ["--map", str(Path(scratch) / "map.png")])
    load_after = os.getloadavg()
    median = statistics.median(runs)
    breakdown = {
        phase: statistics.median(p[0][phase] for p in probes) for phase in probes[0][0]
    }
    interpreter = median - sum(breakdown.values())
    parts = "; ".join(f"{name} {seconds:.2f} s" for name, seconds in breakdown.items())
    rows = [
        Row(
            SECTION,
            f"`geoloc predict --json` one photo, cold process, median of {args.repeats}",
            f"{median:.2f} s",
            goal=f"<= {GOAL_S:g} s",
            met=verdict(median, GOAL_S, higher_is_better=False),
            values={
                "cold_s_median": median,
                "cold_s_runs": runs,
                "breakdown_s_median": breakdown,
                "interpreter_and_rest_s": interpreter,
                "probe_runs": [p[0] for p in probes],
                "heavy_modules_loaded": probes[0][1],
                "with_map_s": with_map,
                "load_before": load_before,
                "load_after": load_after,
                "photo": str(photo),
            },
        ),
        Row(SECTION, "where the cold start goes (median per phase)", parts),
        Row(SECTION, "the same with --map OUT.png (one run)", f"{with_map:.2f} s"),
    ]
    print(f"load average before {load_before}, after {load_after}")
    print_and_write("## geoloc predict cold start", rows, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
