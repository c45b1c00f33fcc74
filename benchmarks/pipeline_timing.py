"""Pipeline: `make demo` from a fresh clone, then a re-rank change, then a no-op `dvc repro`.

In a fresh `git clone` of this checkout's HEAD (a temporary directory, removed afterwards):
1. pipeline: the demo part of `make demo` with the Makefile's environment (GEOLOC_ROOT,
   DAGSTER_HOME, PYTHONDONTWRITEBYTECODE): `geoloc demo-world --if-missing`, `dvc repro`,
   `dvc status`, `dvc metrics show`; which stages ran is read from DVC's "Running stage" lines;
2. incremental: `rerank.eps_km` 50.0 -> 30.0 in the clone's params.yaml, then `dvc repro`
   (repeated with 40.0, so each run has a real change to pick up); only stages downstream of
   `rerank` may run;
3. no-op: `dvc repro` with nothing changed (repeated; DVC only hashes and compares).

Install: by default the clone reuses this checkout's environments (.venv and .venv-dvc) instead
of installing its own, to stay within the benchmark's time budget. The editable install in
.venv points at this checkout's working tree, so PYTHONPATH is set to the clone and the clone's
own console scripts (its pyproject's [project.scripts], for the venv's python) come first on
PATH: the clone's HEAD code runs (setuptools' editable finder comes after the path entries; the
script checks which file was imported). Only the installed libraries are shared. With
--install the clone runs the Makefile's `make install` first (a fresh python3.11 venv,
`pip install -e '.[dev]'`, and DVC's own venv, from the local wheel caches where present),
that time is the install row, and the pipeline then runs in the clone's own environments. The
install figure is written to benchmarks/results_install.json, which the runner quotes, marked
as coming from that run, when it does not install itself.

    python benchmarks/pipeline_timing.py [--install | --install-only] [--noop-repeats 3] [--keep]

Not a test: it prints numbers and ratios.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_rows import Row, all_met, bench_parser, print_and_write, verdict

SECTION = "5 pipeline"
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
INSTALL_RESULT = HERE / "results_install.json"
GOAL_DEMO_S = 600.0
GOAL_INCREMENTAL_S = 60.0
GOAL_NOOP_S = 10.0
EPS_VALUES = (30.0, 40.0)  # from params.yaml's 50.0: each run a real change
# the stages whose dvc.yaml entries depend on the rerank params or outputs; serving bundles
# the rerank settings into the served model
DOWNSTREAM_OF_RERANK = {"rerank", "verification", "evaluation", "serving"}
RUNNING = re.compile(r"Running stage '([^']+)'")
COMMAND_TIMEOUT_S = 3600.0  # a hung command is killed (and reported) rather than waited on


@dataclass(frozen=True)
class Step:
    command: str
    seconds: float
    stages: tuple[str, ...]  # the DVC stages that ran, in order
    stage_s: dict[str, float]  # from one stage's "Running stage" line to the next (or the end)


class Clone:
    """A fresh clone of HEAD and the environment `make demo` gives its commands."""

    def __init__(self, root: Path, own_venv: bool):
        self.root = root
        self.log = root.parent / "commands.log"
        venv_bin = (root if own_venv else REPO) / ".venv" / "bin"
        self.env = {
            **os.environ,
            "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "GEOLOC_ROOT": str(root),
            "DAGSTER_HOME": str(root / ".dagster"),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        self.env.pop("VIRTUAL_ENV", None)
        if not own_venv:
            self.env["PYTHONPATH"] = str(root)
            shims = console_scripts(root, root.parent / "bin", venv_bin / "python")
            self.env["PATH"] = f"{shims}{os.pathsep}{self.env['PATH']}"

    def run(self, command: str) -> Step:
        """Run command in the clone; output goes to the log, each DVC stage start is timed."""
        start = time.perf_counter()
        starts: list[tuple[str, float]] = []
        tail: list[str] = []
        with self.log.open("a") as log:
            log.write(f"\n$ {command}\n")
            process = subprocess.Popen(
                command,
                shell=True,
                cwd=self.root,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert process.stdout is not None
            watchdog = threading.Timer(COMMAND_TIMEOUT_S, process.kill)
            watchdog.start()
            for line in process.stdout:
                log.write(line)
                tail = [*tail[-29:], line.rstrip()]
                match = RUNNING.search(line)
                if match:
                    starts.append((match.group(1), time.perf_counter()))
            returncode = process.wait()
            watchdog.cancel()
        end = time.perf_counter()
        if returncode != 0:
            joined = "\n".join(tail)
            raise RuntimeError(f"`{command}` failed ({returncode}) in {self.root}:\n{joined}")
        bounds = [t for _, t in starts[1:]] + ([end] if starts else [])
        stage_s = {name: b - t for (name, t), b in zip(starts, bounds, strict=True)}
        ran = f"  (ran: {', '.join(f'{k} {v:.0f} s' for k, v in stage_s.items())})"
        print(f"  {end - start:7.1f} s  {command}{ran if stage_s else ''}", flush=True)
        return Step(command, end - start, tuple(stage_s), stage_s)

    def set_eps(self, eps: float) -> None:
        """Change rerank.eps_km in the clone's params.yaml, and nothing else."""
        params = self.root / "params.yaml"
        text = params.read_text()
        section = re.search(r"(?ms)^rerank:\n(?:[ \t]+.*\n|\n)*", text)
        if section is None:
            raise RuntimeError("params.yaml has no rerank section")
        body, count = re.subn(
            r"(?m)^(\s+eps_km:\s*)[0-9.]+", rf"\g<1>{eps}", section.group(0), count=1
        )
        if count != 1:
            raise RuntimeError("params.yaml's rerank section has no eps_km")
        params.write_text(text[: section.start()] + body + text[section.end() :])


def console_scripts(clone: Path, folder: Path, python: Path) -> Path:
    """The clone's own console scripts (pyproject [project.scripts]) for the shared venv's
    python: the venv's `geoloc` was generated for this checkout's entry point, which the
    clone's HEAD may not have. Guarded like pip's scripts: a multiprocessing "spawn" worker
    re-runs the main script as __mp_main__, and must not start the command again."""
    scripts = tomllib.loads((clone / "pyproject.toml").read_text())["project"]["scripts"]
    folder.mkdir(parents=True, exist_ok=True)
    for name, target in scripts.items():
        module, function = target.split(":")
        shim = folder / name
        shim.write_text(
            f"#!{python}\nimport sys\nfrom {module} import {function}\n\n"
            f"if __name__ == '__main__':\n    sys.exit({function}())\n"
        )
        shim.chmod(0o755)
    return folder


def fresh_clone(folder: Path) -> Path:
    target = folder / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(target)], check=True)
    return target


def imported_from(clone: Clone) -> str:
    probe = "import geoloc_core as c, geoloc_assets as a; print(c.__file__, a.__file__)"
    out = subprocess.run(
        ["python", "-c", probe],
        cwd=clone.root,
        env=clone.env,
        capture_output=True,
        text=True,
        check=True,
    )
    files = out.stdout.split()
    if not all(Path(f).resolve().is_relative_to(clone.root.resolve()) for f in files):
        raise RuntimeError(f"the clone would run code from elsewhere: {files}")
    return files[0]


def install_row(seconds: float, source: str) -> Row:
    return Row(
        SECTION,
        "install s: `make install` in a fresh clone (python3.11 venv, pip install -e .[dev], "
        "DVC venv)" + source,
        f"{seconds:.0f}",
        values={"install_s": seconds},
    )


def quoted_install_row() -> Row:
    """The install figure of the last opt-in run, marked as such (or a row saying it is absent)."""
    if not INSTALL_RESULT.is_file():
        return Row(
            SECTION,
            "install s: not measured (opt-in: `make bench BENCH_INSTALL=1`)",
            "—",
        )
    saved = json.loads(INSTALL_RESULT.read_text())
    row = install_row(saved["install_s"], f"; from the opt-in run of {saved['when']}, not this run")
    return Row(**{**row.__dict__, "values": {**row.values, "from_run": saved["when"]}})


def time_install(clone: Clone) -> Row:
    """`make install` in the clone; the figure is also saved for runs that do not install."""
    step = clone.run("make install PYTHON=python3.11")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    INSTALL_RESULT.write_text(
        json.dumps({"install_s": step.seconds, "when": when}, indent=2) + "\n"
    )
    return install_row(step.seconds, "; this run")


def run(
    install: bool = False, noop_repeats: int = 3, keep: bool = False, install_only: bool = False
) -> list[Row]:
    folder = Path(tempfile.mkdtemp(prefix="geoloc-pipeline-"))
    rows: list[Row] = []
    try:
        clone = Clone(fresh_clone(folder), own_venv=install or install_only)
        print(f"fresh clone of HEAD in {clone.root}; log: {clone.log}")
        if install_only:
            return [time_install(clone)]
        rows.append(time_install(clone) if install else quoted_install_row())
        code = imported_from(clone)
        demo = [
            clone.run("geoloc demo-world --if-missing"),
            clone.run("dvc repro"),
            clone.run("dvc status"),
            clone.run("dvc metrics show"),
        ]
        demo_s = sum(s.seconds for s in demo)
        ran = demo[1].stages
        slowest = sorted(demo[1].stage_s.items(), key=lambda kv: -kv[1])[:3]
        rows.append(
            Row(
                SECTION,
                f"pipeline s: fresh clone, `make demo` after install (demo world "
                f"{demo[0].seconds:.0f} s + dvc repro of {len(ran)} stages + status + metrics); "
                "slowest: " + ", ".join(f"{k} {v:.0f} s" for k, v in slowest),
                f"{demo_s:.0f}",
                f"{GOAL_DEMO_S:.0f}",
                f"{demo_s / GOAL_DEMO_S:.2f}",
                f"<= {GOAL_DEMO_S / 60:.0f} min",
                verdict(demo_s, GOAL_DEMO_S, higher_is_better=False),
                {
                    "pipeline_s": demo_s,
                    "steps": {s.command: s.seconds for s in demo},
                    "stages_ran": list(ran),
                    "stage_s": demo[1].stage_s,
                    "code": code,
                    "own_venv": install,
                },
            )
        )
        incremental: list[Step] = []
        for eps in EPS_VALUES:
            clone.set_eps(eps)
            incremental.append(clone.run("dvc repro"))
        seconds = [s.seconds for s in incremental]
        median = statistics.median(seconds)
        ran_sets = [set(s.stages) for s in incremental]
        upstream = sorted(set().union(*ran_sets) - DOWNSTREAM_OF_RERANK)
        rows.append(
            timed_repro_row(
                "incremental s: rerank.eps_km 50 -> 30 (then -> 40), dvc repro; ran: "
                + "; ".join(
                    ", ".join(f"{k} {v:.0f} s" for k, v in s.stage_s.items()) or "nothing"
                    for s in incremental
                ),
                median,
                GOAL_INCREMENTAL_S,
                "no upstream stage",
                bool(upstream),
                {
                    "incremental_s_median": median,
                    "incremental_s_runs": seconds,
                    "eps_values": list(EPS_VALUES),
                    "stages_ran": [list(s.stages) for s in incremental],
                    "stage_s": [s.stage_s for s in incremental],
                    "upstream_stages_ran": upstream,
                },
            )
        )
        noop = [clone.run("dvc repro") for _ in range(max(1, noop_repeats))]
        seconds = [s.seconds for s in noop]
        median = statistics.median(seconds)
        anything = sorted({stage for s in noop for stage in s.stages})
        rows.append(
            timed_repro_row(
                f"no-op s: dvc repro with nothing changed (median of {len(noop)})",
                median,
                GOAL_NOOP_S,
                "nothing runs",
                bool(anything),
                {"noop_s_median": median, "noop_s_runs": seconds, "stages_ran": anything},
            )
        )
    finally:
        if keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return rows


def timed_repro_row(
    what: str,
    median: float,
    goal_s: float,
    condition: str,
    broke_condition: bool,
    values: dict[str, Any],
) -> Row:
    """A `dvc repro` timed against its budget: met when within goal_s and, besides, the stages
    that ran kept to `condition` (no upstream stage, nothing at all)."""
    return Row(
        SECTION,
        what,
        f"{median:.1f}",
        f"{goal_s:.0f}",
        f"{median / goal_s:.2f}",
        f"<= {goal_s:.0f} s, {condition}",
        all_met(
            verdict(median, goal_s, higher_is_better=False),
            "NO" if broke_condition else "yes",
        ),
        values,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--install", action="store_true", help="time `make install` too")
    parser.add_argument("--install-only", action="store_true", help="time `make install` alone")
    parser.add_argument("--noop-repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone")
    args = parser.parse_args(argv)
    if shutil.which("git") is None:
        sys.exit("git is needed to clone the checkout")
    rows = run(args.install, args.noop_repeats, args.keep, args.install_only)
    print_and_write("Pipeline, fresh clone of HEAD", rows, args.json)


if __name__ == "__main__":
    main()
