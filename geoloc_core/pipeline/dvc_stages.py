"""dvc.yaml from the registry: one DVC stage per group of steps, so `dvc repro` re-runs exactly
the groups whose params sections, upstream outputs or code changed, as Dagster's staleness does.

Each stage materializes its group through Dagster (so Dagster's record and MLflow's runs stay
complete). Outputs are `persist: true`: DVC neither deletes them before the command nor replays
them from its run-cache without running it, so a DVC-restored file can never exist without its
Dagster materialization.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from geoloc_core.pipeline.code_files import PACKAGE_DIR, code_files
from geoloc_core.pipeline.registry import BENCHMARK, RAW_DATA_PATH, SOURCES, STAGES
from geoloc_core.pipeline.stage import Stage

DVC_FILE = "dvc.yaml"
HEADER = """\
# Generated from geoloc_core/pipeline/registry.py by `geoloc dvc-yaml`: do not edit by hand
# (tests/test_pipeline_registry.py fails when this file and the registry disagree).
# One stage per group of steps; each runs its group through Dagster and lists the params
# sections its steps read, the outputs of the steps they read and the code they run. Outputs
# are `persist: true`, so DVC never deletes or replays them behind Dagster's back.
"""
PLOT_TEMPLATES = "geoloc_core/report/dvc_templates"
REPORT_PICTURES = ("error_curves",)
PER_BENCHMARK_PICTURES = ("cdf", "map", "reliability")


def groups(stages: Sequence[Stage] = STAGES) -> dict[str, list[Stage]]:
    """Group name -> its steps, in the order the data flows."""
    grouped: dict[str, list[Stage]] = {}
    for stage in stages:
        grouped.setdefault(stage.group, []).append(stage)
    return grouped


# Settings that name imported files (docs/imports.md): the stage that reads them lists them as
# deps, so `dvc repro` re-runs it (and what follows) when the imported bytes change.
IMPORTED_INPUTS = (("train", "imported_model", "model"),)


def imported_deps(params: Mapping[str, Any]) -> dict[str, list[str]]:
    """Stage group -> the imported folders its settings name."""
    deps: dict[str, list[str]] = {}
    for section, key, group in IMPORTED_INPUTS:
        value = (params.get(section) or {}).get(key)
        if value:
            deps.setdefault(group, []).append(str(value))
    return deps


def render(
    benchmarks: Sequence[str],
    stages: Sequence[Stage] = STAGES,
    imported: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """The text of dvc.yaml for these benchmarks (imported: extra deps per stage group)."""
    grouped = groups(stages)
    imported = imported or {}
    body = {
        "stages": {
            name: _stage(grouped[name], stages, benchmarks, imported.get(name, ()))
            for name in grouped
        },
        "plots": _plots(benchmarks),
    }
    return HEADER + yaml.safe_dump(body, sort_keys=False, width=100)


def _stage(
    members: list[Stage],
    stages: Sequence[Stage],
    benchmarks: Sequence[str],
    imported: Sequence[str] = (),
) -> dict:
    by_name = {s.name: s for s in stages}
    group = members[0].group
    own = {s.name for s in members}
    deps: list[str] = list(imported)
    for stage in members:
        for upstream in stage.upstream:
            if upstream.step in SOURCES:
                deps.append(RAW_DATA_PATH)
            elif upstream.step not in own:
                deps += by_name[upstream.step].dependency_paths
    deps += _code_paths(f for s in members for f in code_files(s.module))
    sections = [name for s in members for name in s.hashed_sections]
    if any(s.partitioning == BENCHMARK for s in members):
        sections.append("benchmarks")
    outs, metrics = [], []
    for output in (o for s in members for o in s.outputs):
        flags: dict[str, Any] = {} if output.cache else {"cache": False}
        flags["persist"] = True
        if output.metric:
            metrics += [{output.path.format(benchmark=b): flags} for b in benchmarks]
        else:
            outs.append({output.path: flags})
    stage: dict[str, Any] = {
        "cmd": f"geoloc materialize --group {group}",
        "deps": _unique(deps),
        "params": _unique(sections),
    }
    if outs:
        stage["outs"] = outs
    if metrics:
        stage["metrics"] = metrics
    return stage


def _code_paths(files: Iterable[Path]) -> list[str]:
    """The files as paths relative to the project, a folder standing for all of its files
    when every one of them is there."""
    wanted = set(files)
    root = PACKAGE_DIR.parent
    folders = sorted({p.parent for p in wanted}, key=lambda p: len(p.parts))
    whole: list[Path] = []
    for folder in folders:
        if folder == PACKAGE_DIR or any(w in folder.parents for w in whole):
            continue
        members = {p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
        if members <= wanted:
            whole.append(folder)
    kept = [p for p in wanted if not any(w in p.parents for w in whole)]
    return sorted(p.relative_to(root).as_posix() for p in [*whole, *kept])


def _plots(benchmarks: Sequence[str]) -> list:
    cdf = {f"metrics/plots/cdf_{b}.csv": "fraction" for b in benchmarks}
    accuracy = {
        f"metrics/plots/accuracy_{b}.csv": ["decision", "retrieval_top1", "rerank"]
        for b in benchmarks
    }
    reliability = {f"metrics/plots/reliability_{b}.csv": "observed" for b in benchmarks}
    pictures = [f"reports/{name}.png" for name in REPORT_PICTURES]
    pictures += [f"reports/{kind}_{b}.png" for kind in PER_BENCHMARK_PICTURES for b in benchmarks]
    return [
        {
            "Error CDF of the decision (log x)": {
                "template": f"{PLOT_TEMPLATES}/log_x.json",
                "x": "error_km",
                "y": cdf,
                "x_label": "geodesic error, km (log)",
                "y_label": "fraction of images with error <= x",
            }
        },
        {
            "Error CDF of the decision (linear x)": {
                "template": "simple",
                "x": "error_km",
                "y": cdf,
                "x_label": "geodesic error, km",
                "y_label": "fraction of images with error <= x",
            }
        },
        {
            "Accuracy within each threshold (log x)": {
                "template": f"{PLOT_TEMPLATES}/log_x_points.json",
                "x": "threshold_km",
                "y": accuracy,
                "x_label": "threshold, km (log)",
                "y_label": "% of images with error < threshold",
            }
        },
        {
            "Confidence radii: observed against stated coverage": {
                "template": "simple",
                "x": "stated",
                "y": reliability,
                "x_label": "stated coverage of the radius",
                "y_label": "share of truths within the radius",
            }
        },
        *pictures,
    ]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def write(root: Path, params: Mapping[str, Any]) -> Path:
    """Write dvc.yaml for the project's benchmarks; returns its path."""
    path = Path(root) / DVC_FILE
    path.write_text(render(params["benchmarks"]["names"], imported=imported_deps(params)))
    return path
