"""What every benchmark hands the runner: rows of one shared table, and the timing rule.

A row reads "what | ours | peer or limit | ratio | goal | met?" as text for the markdown table,
and keeps the raw numbers (`values`) for benchmarks/results.json, so a reader can recompute a
ratio instead of trusting its rounding. Timed parts are repeated and the median is reported: on
a shared 2-core machine a single run measures the neighbours as much as the code.

Only the standard library is imported here, so a script can import it before numpy (the BLAS
environment must be settled first, see `reexec_without_blas_overrides`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
NONE = "—"
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


@dataclass(frozen=True)
class Row:
    """One line of the table; `met` is "yes", "NO" or "—" (no goal, reported for context)."""

    section: str
    what: str
    ours: str
    peer: str = NONE
    ratio: str = NONE
    goal: str = NONE
    met: str = NONE
    values: dict[str, Any] = field(default_factory=dict)

    def cells(self) -> list[str]:
        return [self.what, self.ours, self.peer, self.ratio, self.goal, self.met]


def verdict(value: float, goal: float, higher_is_better: bool = True) -> str:
    return "yes" if (value >= goal if higher_is_better else value <= goal) else "NO"


def all_met(*verdicts: str) -> str:
    return "yes" if all(v == "yes" for v in verdicts) else "NO"


def table(rows: Sequence[Row], with_section: bool = False) -> str:
    """The markdown table; with_section prefixes each `what` with its section number."""
    header = ["what", "ours", "peer or limit", "ratio", "goal", "met?"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = row.cells()
        if with_section:
            cells[0] = f"{row.section}: {cells[0]}"
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Timing:
    """Wall seconds of `repeats` runs of one piece of work; `median` is what rows report."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def as_values(self, prefix: str) -> dict[str, Any]:
        return {f"{prefix}_s_median": self.median, f"{prefix}_s_runs": list(self.samples)}


def timed(work: Callable[[], T], repeats: int = 3, warmup: int = 0) -> tuple[T, Timing]:
    """(last result, timing over `repeats` runs after `warmup` untimed ones)."""
    for _ in range(warmup):
        work()
    samples: list[float] = []
    result: T
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = work()
        samples.append(time.perf_counter() - start)
    return result, Timing(tuple(samples))


def reexec_without_blas_overrides() -> None:
    """OpenBLAS reads OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE when it loads, and where they are set
    they slow a current numpy: re-execute this process once without them, before numpy loads."""
    present = [name for name in BLAS_OVERRIDES if name in os.environ]
    if present:
        env = {k: v for k, v in os.environ.items() if k not in BLAS_OVERRIDES}
        env["GEOLOC_BENCH_UNSET_BLAS"] = ",".join(present)
        os.execve(sys.executable, [sys.executable, *sys.argv], env)


def write_rows(rows: Iterable[Row], path: str | Path | None, extra: dict[str, Any] | None = None):
    """The rows as JSON for the runner (a script run alone passes no path and writes nothing)."""
    if path is None:
        return
    payload = {"rows": [asdict(r) for r in rows], **(extra or {})}
    Path(path).write_text(json.dumps(payload, indent=2, default=float) + "\n")


def read_rows(path: str | Path) -> tuple[list[Row], dict[str, Any]]:
    payload = json.loads(Path(path).read_text())
    rows = [Row(**r) for r in payload.pop("rows")]
    return rows, payload


def print_table(title: str, rows: Sequence[Row]) -> None:
    print(f"\n{title}\n")
    print(table(rows))


def bench_parser(doc: str | None) -> argparse.ArgumentParser:
    """A script's argument parser, described by its docstring's first line, with the --json
    option through which benchmarks/run_all.py collects every script's rows."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--json", help="write the rows here (for benchmarks/run_all.py)")
    return parser


def print_and_write(title: str, rows: Sequence[Row], path: str | Path | None) -> None:
    """The end of every script: its table on stdout, its rows for the runner."""
    print_table(title, rows)
    write_rows(rows, path)
