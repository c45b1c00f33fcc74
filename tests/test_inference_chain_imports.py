"""`geoloc predict` and the served model run the inference chain (geoloc_core/inference), not
the benchmark steps: nothing they import, directly or through other project modules, is a
module of geoloc_core.steps. Static: every import statement of every reachable module counts,
including those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("geoloc_core.predict", "geoloc_core.serving")
FORBIDDEN = "geoloc_core.steps"


def module_file(name: str) -> Path | None:
    """The source of a project module (a package's __init__.py), None outside geoloc_core."""
    if not name.startswith("geoloc_core"):
        return None
    base = REPO.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_names(path: Path, module: str) -> set[str]:
    """Every module an import statement of the file names (`from a import b` gives a and a.b)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def reachable_imports(roots: tuple[str, ...]) -> dict[str, str]:
    """imported module -> the project module that imports it, over everything reachable from
    the modules of the root packages."""
    queue = [
        ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for root in roots
        for path in sorted(REPO.joinpath(*root.split(".")).rglob("*.py"))
    ]
    seen = set(queue)
    importer: dict[str, str] = {}
    while queue:
        module = queue.pop()
        path = module_file(module)
        if path is None:
            continue
        for name in imported_names(path, module):
            importer.setdefault(name, module)
            if name not in seen and module_file(name) is not None:
                seen.add(name)
                queue.append(name)
    return importer


def test_predict_and_serving_never_import_the_steps():
    importer = reachable_imports(PACKAGES)
    steps = {
        name: by
        for name, by in importer.items()
        if name == FORBIDDEN or name.startswith(FORBIDDEN + ".")
    }
    assert steps == {}, f"imported from geoloc_core.steps (module: its importer): {steps}"


def test_the_walk_sees_the_chain():
    # the check above means something only if the walk reaches the chain's modules
    importer = reachable_imports(PACKAGES)
    for stage in ("search", "rerank", "lmm", "pool", "decision"):
        assert f"geoloc_core.inference.{stage}" in importer
