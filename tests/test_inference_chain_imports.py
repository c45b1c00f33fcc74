"""`geoloc predict` and the served model run the inference chain (geoloc_core/inference), not
the benchmark steps: no module of predict/ or serving/ reaches a module of geoloc_core/steps,
directly or through other project modules (every import counts, those inside functions too)."""

from __future__ import annotations

from pathlib import Path

from geoloc_core.pipeline.code_files import PACKAGE_DIR, code_files

PACKAGES = ("predict", "serving")


def modules_of(package: str) -> list[str]:
    folder = PACKAGE_DIR / package
    return [
        ".".join(("geoloc_core", *path.relative_to(PACKAGE_DIR).with_suffix("").parts))
        for path in sorted(folder.glob("*.py"))
        if path.name != "__init__.py"
    ]


def reached(module: str) -> list[Path]:
    return [p.relative_to(PACKAGE_DIR) for p in code_files(module) if p.suffix == ".py"]


def test_predict_and_serving_never_reach_the_steps():
    steps = {
        module: [str(p) for p in reached(module) if p.parts[0] == "steps"]
        for package in PACKAGES
        for module in modules_of(package)
    }
    assert {m: files for m, files in steps.items() if files} == {}


def test_the_predictor_reaches_every_stage_of_the_chain():
    # the check above means something only if the walk reaches the chain's modules
    files = {str(p) for p in reached("geoloc_core.predict.predictor")}
    for stage in ("search", "rerank", "lmm", "pool", "decision"):
        assert f"inference/{stage}.py" in files
