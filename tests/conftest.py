"""Shared fixtures: a tiny project (params + demo world) in a temp directory."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = ["validation", "demo-street", "demo-unseen"]
# A recognisable fake API key, in the environment for the whole suite under every name the
# project reads a key from: whatever any test runs (the LMM stages, the served model, the UIs),
# the key must end up in no file. pytest_sessionfinish sweeps every file the suite wrote.
SUITE_SECRET = "sk-geoloc-SUITE-FAKE-5e0c2b7a-never-written"
SECRET_ENV_NAMES = ("GEOLOC_LMM_API_KEY", "OPENAI_API_KEY")
# what a run leaves in the checkout itself, besides the temp folders
REPO_OUTPUTS = ("dvc.lock", "params.yaml", "metrics", "reports", ".ui-screenshots")


def pytest_configure(config: pytest.Config) -> None:
    for name in SECRET_ENV_NAMES:
        os.environ[name] = SUITE_SECRET


def is_xdist_worker(config: pytest.Config) -> bool:
    """True in a pytest-xdist worker (`make test` runs two), False in a plain run."""
    return hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    """In an xdist worker, open_clip is imported whole before any test, as the first tower
    builder of a one-process run does: a lean import first (preflight and predict hide the hub
    libraries they do not need) would leave timm unimportable for the tower tests that follow in
    that process, depending on which files the worker got."""
    if is_xdist_worker(session.config):
        from geoloc_core.encoders.clip_towers import _open_clip

        _open_clip()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, the files holding slow tests first. Each worker takes whole files in
    this order (--dist loadfile --no-loadscope-reorder), so the longest files start at once
    and the short ones fill in around them, instead of a long file running alone at the end."""
    if not is_xdist_worker(config):
        return
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: file order kept


def files_holding(folders: list[Path], needle: bytes) -> list[Path]:
    """Every regular file under folders (or a file itself) whose bytes contain needle."""
    found = []
    for folder in folders:
        candidates = [folder] if folder.is_file() else folder.rglob("*") if folder.is_dir() else []
        for path in candidates:
            if path.is_file() and not path.is_symlink():
                try:
                    if needle in path.read_bytes():
                        found.append(path)
                except OSError:  # a socket or a file removed meanwhile
                    continue
    return found


def listing(paths: list[Path]) -> str:
    """The first 20 paths, one per line."""
    return "\n  ".join(str(path) for path in paths[:20])


@pytest.fixture(autouse=True)
def no_secret_left_in_tmp_path(request: pytest.FixtureRequest) -> Iterator[None]:
    """A passed test's tmp_path is removed when it ends (tmp_path_retention_policy), before
    the session's sweep below could read it: so it is swept here first."""
    if "tmp_path" not in request.fixturenames:
        yield
        return
    folder = request.getfixturevalue("tmp_path")  # torn down after this fixture
    yield
    leaked = files_holding([folder], SUITE_SECRET.encode())
    assert not leaked, f"the suite's fake API key was written into:\n  {listing(leaked)}"


@pytest.hookimpl(tryfirst=True)  # before pytest's own removes a passed run's base temp folder
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if the suite's fake key was written anywhere: the temp folders of every
    test (MLflow stores and artifacts, Dagster instances and compute logs, DVC files,
    reports, served models) and the checkout's own outputs. Under pytest-xdist the controller
    sweeps once: its base temp folder holds every worker's."""
    if is_xdist_worker(session.config):
        return
    factory = getattr(session.config, "_tmp_path_factory", None)
    folders = [REPO / name for name in REPO_OUTPUTS]
    if factory is not None:
        folders.append(factory.getbasetemp())
    leaked = files_holding(folders, SUITE_SECRET.encode())
    if leaked:
        print(f"\nthe suite's fake API key was written into {len(leaked)} files:")
        print(f"  {listing(leaked)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


TINY_OVERRIDES = {
    "demo_world": {
        "reference_sites": 18,
        "reference_views": 3,
        "validation_views": 1,
        "street_sites": 6,
        "street_views": 1,
        "unseen_sites": 6,
        "unseen_views": 1,
        "workers": 1,
    },
    "train": {"epochs": 2, "batch_size": 16},
    "segmentation": {"n_shards": 2, "progress": False},
    "backbone": {"pretrain_epochs": 2, "pretrain_batch_size": 32},
    "features": {"n_shards": 2},
}


def tiny_params() -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in TINY_OVERRIDES.items():
        params[section].update(values)
    return params


def make_tiny_project(root: Path, with_code: bool = False) -> Path:
    """A project root with tiny params and a generated demo world (and a copy of the code)."""
    from geoloc_core.demo_world.generate import DemoWorldConfig, generate_demo_world

    root.mkdir(parents=True, exist_ok=True)
    params = tiny_params()
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    generate_demo_world(
        root / params["data"]["root"],
        DemoWorldConfig.from_section(params["demo_world"]),
        progress=False,
    )
    if with_code:
        for name in ("geoloc_core", "geoloc_assets"):
            shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("dvc.yaml", ".dvcignore"):
            shutil.copy(REPO / name, root / name)
    return root


@pytest.fixture(scope="module")
def one_faiss_thread():
    """One OpenMP thread for a module's FAISS work (`pytestmark = pytest.mark.usefixtures(...)`):
    on a shared 2-core machine FAISS's thread barriers stall."""
    import faiss  # here, not at the top: only the modules that ask for it load FAISS

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_world_template(tmp_path_factory) -> Path:
    return make_tiny_project(tmp_path_factory.mktemp("tiny-template"))


@pytest.fixture
def tiny_project(tiny_world_template: Path, tmp_path: Path) -> Path:
    """A fresh copy per test, so tests never see each other's outputs."""
    target = tmp_path / "project"
    shutil.copytree(tiny_world_template, target)
    return target


def launchpad_run(root: Path, asset: str, partition: str, config: dict):
    """One asset partition materialized with its run config edited, as the launchpad does it."""
    import dagster as dg

    from geoloc_assets.definitions import build_definitions
    from geoloc_assets.runner import project_instance

    defs = build_definitions(root)
    return dg.materialize(
        list(defs.assets),
        instance=project_instance(root),
        resources=defs.resources,
        selection=dg.AssetSelection.assets(asset),
        partition_key=partition,
        run_config={"ops": {asset: {"config": config}}},
    )


def materialize_all(root: Path):
    """Every asset group of the project at root, every benchmark partition, in one pass."""
    from geoloc_assets.definitions import build_definitions
    from geoloc_assets.runner import (
        materialize_selection,
        observe_raw_data,
        project_instance,
        selected_keys,
    )

    defs = build_definitions(root)
    instance = project_instance(root)
    observe_raw_data(defs, instance)
    groups = sorted(defs.resolve_asset_graph().all_group_names)
    keys = selected_keys(defs, groups, [])
    return defs, instance, materialize_selection(defs, instance, keys, BENCHMARKS)


def build_materialized_template(root: Path) -> Path:
    make_tiny_project(root)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(root / ".dagster"))
        _, _, outcomes = materialize_all(root)
    assert all(o.success for o in outcomes), outcomes
    return root


@pytest.fixture(scope="session")
def materialized_template(request: pytest.FixtureRequest, tmp_path_factory) -> Path:
    """The tiny project with the whole graph materialized once (its Dagster instance in
    <root>/.dagster, its MLflow store in <root>/mlruns). Shared: never write into it; copy it.
    Under pytest-xdist the first worker to need it builds it and the others wait for it and
    reuse it (a lock in the run's base temp folder, which holds every worker's): a second build
    would cost a core for as long as the first."""
    if not is_xdist_worker(request.config):
        return build_materialized_template(tmp_path_factory.mktemp("e2e") / "project")
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent  # the controller's, above gw0, gw1, ...
    built = shared / "materialized-template.path"  # written once the build succeeded
    with FileLock(shared / "materialized-template.lock"):
        if built.is_file():
            return Path(built.read_text())
        # in the controller's folder, not this worker's: a worker that passed removes its own
        # when it ends (tmp_path_retention_policy), while the other may still copy this
        folder = shared / "e2e-template"
        shutil.rmtree(folder, ignore_errors=True)  # a build that failed part-way
        root = build_materialized_template(folder / "project")
        built.write_text(str(root))
        return root
