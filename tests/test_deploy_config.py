"""The checked-in deployment config holds without a cluster: the project's definitions load with
dagster-k8s's executor configured from deploy/k8s/executor.yaml and their run config validates
against it, the GPU steps' pods ask Kubernetes for a GPU, and a DVC remote round-trips bytes."""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster_k8s import k8s_job_executor
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import (
    DagsterK8sJobConfig,
    UserDefinedDagsterK8sConfig,
    construct_dagster_k8s_job,
    get_user_defined_k8s_config,
)

from geoloc_assets.factory import build_assets
from geoloc_assets.partitions import GPU_POOL, GPU_RESOURCE, RAY_CONFIG_TAG
from tests.conftest import REPO
from tests.test_tooling import dvc_executable, dvc_git_env

K8S = REPO / "deploy" / "k8s"
DVC_EXAMPLE = REPO / "deploy" / "dvc" / "config.example"


@pytest.fixture(scope="module")
def k8s_definitions() -> dg.Definitions:
    """deploy/k8s/definitions.py, the code location the cluster serves (the repo's params)."""
    return runpy.run_path(str(K8S / "definitions.py"))["defs"]


def executor_config() -> dict:
    return yaml.safe_load((K8S / "executor.yaml").read_text())


def test_definitions_load_with_the_k8s_executor_and_their_run_config_validates(
    k8s_definitions: dg.Definitions,
):
    job = k8s_definitions.resolve_implicit_global_asset_job_def()
    assert job.executor_def.name == k8s_job_executor.name
    # every asset's config (params defaults) and the executor's checked-in config
    resolved = dg.validate_run_config(job, {})
    assert resolved["execution"][k8s_job_executor.name]["job_namespace"] == "geoloc"

    # the same file as run config of an unconfigured k8s executor, and a typo in it refused
    @dg.asset
    def probe() -> None: ...

    plain = dg.Definitions(assets=[probe], executor=k8s_job_executor)
    probe_job = plain.resolve_implicit_global_asset_job_def()
    dg.validate_run_config(probe_job, {"execution": {"config": executor_config()}})
    misspelled = {**executor_config(), "job_namespce": "geoloc"}
    with pytest.raises(dg.DagsterInvalidConfigError, match="job_namespce"):
        dg.validate_run_config(probe_job, {"execution": {"config": misspelled}})

    # runs and their steps land in the one namespace the Helm release launches into
    values = yaml.safe_load((K8S / "values.yaml").read_text())
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert launcher["jobNamespace"] == executor_config()["job_namespace"]
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"


def step_container(step_tags: dict[str, str]):
    """The container of a step's Kubernetes Job as the k8s executor builds it: its step config
    from executor.yaml, then the step's own dagster-k8s/config tag."""
    step_config = UserDefinedDagsterK8sConfig.from_dict(executor_config()["step_k8s_config"])
    context = K8sContainerContext(run_k8s_config=step_config).merge(
        K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(step_tags))
    )
    job = construct_dagster_k8s_job(
        DagsterK8sJobConfig(job_image="registry.example.com/geoloc:test"),
        args=["dagster", "api", "execute_step"],
        job_name="dagster-step-probe",
        user_defined_k8s_config=context.run_k8s_config,
    )
    return job.spec.template.spec, job.spec.template.spec.containers[0]


def test_gpu_steps_pods_ask_for_one_gpu_and_the_others_for_none(
    k8s_definitions: dg.Definitions,
):
    graph = k8s_definitions.resolve_asset_graph()
    seen = set()
    for key in graph.materializable_asset_keys:
        op = graph.get(key).assets_def.op
        pod, container = step_container(op.tags)
        limits = container.resources.limits or {}
        assert container.resources.requests["cpu"] == "2", key  # executor.yaml's default
        if op.pool == GPU_POOL:
            seen.add(key.to_user_string())
            assert limits.get(GPU_RESOURCE) == "1", key
            assert any(t.key == GPU_RESOURCE for t in pod.tolerations or []), key
        else:
            assert GPU_RESOURCE not in limits, key
    assert {"backbone_features", "alignment_model", "reference_embeddings"} <= seen


def test_training_on_several_devices_asks_one_pod_for_that_many_gpus():
    """train.devices > 1 trains under torchrun, one process a GPU, in the step's one pod: that
    pod asks for train.devices GPUs (Ray: as many), every other GPU step for one."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"]["devices"] = 4
    built = build_assets(params)
    steps = [a for a in built if isinstance(a, dg.AssetsDefinition) and a.is_materializable]
    asked = {}
    for step in steps:
        op = step.op
        key = op.name
        if op.pool == GPU_POOL:
            pod, container = step_container(op.tags)
            assert container.resources.requests[GPU_RESOURCE] == container.resources.limits[
                GPU_RESOURCE
            ], key
            assert any(t.key == GPU_RESOURCE for t in pod.tolerations or []), key
            asked[key] = (
                container.resources.limits[GPU_RESOURCE],
                json.loads(op.tags[RAY_CONFIG_TAG])["num_gpus"],
            )
    assert asked.pop("alignment_model") == ("4", 4)
    assert asked and set(asked.values()) == {("1", 1)}


def test_dvc_push_and_pull_round_trip_through_a_local_remote(tmp_path: Path):
    dvc = dvc_executable()
    repo = tmp_path / "repo"
    remote = tmp_path / "remote"
    (repo / "data" / "raw").mkdir(parents=True)
    env = dvc_git_env()

    def run(*args: str) -> str:
        done = subprocess.run(args, cwd=repo, capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, f"{args}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        return done.stdout

    run("git", "init", "-q")
    run(dvc, "init", "-q")
    # the checked-in example is valid DVC config (DVC checks it when it rewrites it: an
    # unknown key fails); then the same remote name on a local folder
    shutil.copy(DVC_EXAMPLE, repo / ".dvc" / "config")
    run(dvc, "remote", "default", "storage")
    run(dvc, "remote", "add", "--force", "--default", "storage", str(remote))

    files = {
        "data/raw/images.bin": os.urandom(300_000),
        "data/raw/manifest.csv": b"id,lat,lon\na,48.85,2.35\nb,-33.87,151.21\n",
    }
    for name, content in files.items():
        (repo / name).write_bytes(content)
    run(dvc, "add", "-q", "data/raw")
    run(dvc, "push", "-q")
    assert any(p.is_file() for p in remote.rglob("*")), "nothing reached the remote"

    shutil.rmtree(repo / "data" / "raw")
    shutil.rmtree(repo / ".dvc" / "cache")
    run(dvc, "pull", "-q")
    for name, content in files.items():
        assert (repo / name).read_bytes() == content, name
