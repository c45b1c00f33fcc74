"""GPU and secrets: a section that asks for cuda needs a CUDA device torch can see (FAISS's
GPU build for the index), and an OpenAI-compatible provider needs its key in the environment
variable the settings name (the key itself is never a setting)."""

from __future__ import annotations

import os
from typing import Any

from geoloc_core.preflight.report import Problem

DEVICE_KEYS = ("segmentation.device", "features.device", "train.device", "index.device")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def device_keys(params: dict[str, Any]) -> dict[str, str]:
    """'section.device' -> its value, for the sections in force that pick a device."""
    keys = {key: params[key.split(".")[0]]["device"] for key in DEVICE_KEYS}
    if params["lmm"]["provider"] == "transformers":
        keys["lmm.device"] = params["lmm"]["device"]
    if params["segmentation"]["provider"] == "demo":
        keys.pop("segmentation.device")  # the demo's label maps need no model
    return keys


def runs_on(params: dict[str, Any], gpu: bool) -> str:
    wanted = set(device_keys(params).values())
    return "cuda" if gpu and wanted & {"cuda", "auto"} else "cpu"


def gpu_problems(params: dict[str, Any], gpu: bool) -> list[Problem]:
    problems = []
    for key, device in device_keys(params).items():
        if device == "cuda" and not gpu:
            problems.append(
                Problem(
                    "gpu",
                    f"{key} is cuda but torch sees no CUDA device on this machine",
                    f"run on a machine with a CUDA GPU (`nvidia-smi` lists it), or set {key}: auto",
                )
            )
    if params["index"]["device"] == "cuda" and gpu and not _faiss_gpus():
        problems.append(
            Problem(
                "gpu",
                "index.device is cuda but FAISS has no GPU build here",
                "pip install -e '.[gpu]' (faiss-gpu)",
            )
        )
    return problems


def _faiss_gpus() -> int:
    import faiss

    return int(getattr(faiss, "get_num_gpus", lambda: 0)())


def secret_problems(params: dict[str, Any]) -> list[Problem]:
    problems = []
    for key, provider, variable in (
        ("text.provider", params["text"]["provider"], params["text"]["lmm_api_key_env"]),
        ("lmm.provider", params["lmm"]["provider"], params["lmm"]["api_key_env"]),
    ):
        if provider == "openai" and not os.environ.get(variable):
            problems.append(
                Problem(
                    "secret",
                    f"{key} is openai but ${variable} is not set",
                    f"export {variable}=<your key>  (never written to params, MLflow or logs)",
                )
            )
    return problems
