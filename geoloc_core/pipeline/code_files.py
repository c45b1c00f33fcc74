"""The code a step runs: its module and every geoloc_core module it imports, directly or not,
with the data files beside them. Their digest is the step's code version and their paths are
the DVC stage's code deps, so a change to the code a step runs marks exactly that step (and
what follows it) stale in both, with no version number to bump by hand."""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

PACKAGE = "geoloc_core"
PACKAGE_DIR = Path(__file__).resolve().parent.parent
DATA_SUFFIXES = (".json", ".csv")  # files a module reads beside itself (configs, tables)


def module_file(name: str, package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The source file of a geoloc_core module or package, or None outside it."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    parts = name.split(".")[1:]
    if not parts:
        return package_dir / "__init__.py"
    folder = package_dir.joinpath(*parts[:-1])
    for candidate in (folder / f"{parts[-1]}.py", folder / parts[-1] / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, package_dir: Path) -> tuple[str, ...]:
    """Every module named by an import anywhere in the file (lazy imports in functions too)."""
    relative = path.relative_to(package_dir.parent).with_suffix("").parts
    package = relative[:-1]  # a module's package; an __init__'s own package
    return _imported_names(path.read_text(), package, str(path))


@cache
def _imported_names(source: str, package: tuple[str, ...], filename: str) -> tuple[str, ...]:
    """The import names of one source text. Cached by the text itself: each step's walk reaches
    the same shared modules, and parsing them again for every step made loading the code
    location (each `geoloc` command, run and step process) seconds slower; an edited file is
    a new text, so it is parsed again."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            names += [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return tuple(names)


@cache
def code_files(module: str, package_dir: Path = PACKAGE_DIR) -> tuple[Path, ...]:
    """The module's file, the files of the geoloc_core modules it reaches, the __init__ files of
    their packages, and the data files in their folders: sorted, without repeats."""
    start = module_file(module, package_dir)
    if start is None:
        raise ValueError(f"{module} is not a {PACKAGE} module")
    seen: set[Path] = set()
    todo = [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        inits = [p / "__init__.py" for p in path.parents if package_dir in (p, *p.parents)]
        reached = [module_file(name, package_dir) for name in _imports(path, package_dir)]
        todo += [p for p in [*reached, *inits] if p is not None and p.is_file()]
    data = {
        f for p in seen for f in p.parent.iterdir() if f.suffix in DATA_SUFFIXES and f.is_file()
    }
    return tuple(sorted(seen | data))


def code_digest(module: str, package_dir: Path = PACKAGE_DIR) -> str:
    """A short digest of the bytes of code_files(module), by path relative to the package."""
    digest = hashlib.sha256()
    for path in code_files(module, package_dir):
        name = path.relative_to(package_dir.parent).as_posix()
        digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:10]
