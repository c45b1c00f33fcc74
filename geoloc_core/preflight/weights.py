"""Are the weights the settings name on this machine? The backbone's open_clip weights (a tag,
looked up in the Hugging Face cache where open_clip downloads it, or a file), the segmentation
and LMM checkpoints (a local folder or the Hugging Face cache) and GeoCLIP's released files.
Nothing is downloaded: a missing one is a Problem with the command that fetches it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from geoloc_core.preflight.report import Problem

HUB_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
OPEN_CLIP_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def fetch_command(name: str) -> str:
    """The `geoloc fetch` line for a dataset or a hub model: a hub repo id is named by the fetch
    catalogue's entry for it (geoloc_core/fetch/catalogue.yaml)."""
    from geoloc_core.fetch.catalogue import load_catalogue

    entries = load_catalogue().entries
    if name not in entries:
        by_repo = {e.hub.repo_id: key for key, e in entries.items() if e.hub is not None}
        if name in by_repo:
            return f"geoloc fetch {by_repo[name]}"
        return f"place {name} by hand, or add a fetch catalogue entry for it (docs/data.md)"
    return f"geoloc fetch {name}"


def in_hub_cache(repo_id: str, filenames: tuple[str, ...]) -> bool:
    """One of filenames of repo_id is in the local Hugging Face cache (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    for filename in filenames:
        try:
            found = try_to_load_from_cache(repo_id, filename)
        except ValueError:  # not a valid repo id
            return False
        if isinstance(found, str):
            return True
    return False


def hub_model_present(root: Path, model_id: str) -> bool:
    """A transformers checkpoint: a local folder (absolute or under the project) or the cache."""
    for folder in (Path(model_id), Path(root) / model_id):
        if (folder / "config.json").is_file():
            return True
    return in_hub_cache(model_id, ("config.json",)) and in_hub_cache(model_id, HUB_WEIGHT_FILES)


def backbone_problems(root: Path, backbone: dict[str, Any]) -> list[Problem]:
    pretrained = backbone["pretrained"]
    if not pretrained:
        return []  # pretrained here on the reference images (the demo)
    architecture = backbone["architecture"]
    file = Path(root) / pretrained
    if file.suffix or "/" in pretrained:
        if file.is_file():
            return []
        return [
            Problem(
                "weights",
                f"backbone.pretrained file {pretrained} is missing",
                f"put the weights at {file} or set backbone.pretrained to an open_clip tag",
            )
        ]
    from geoloc_core.encoders.clip_towers import TowerSpec, _open_clip

    # lean: open_clip without timm and transformers, which a tag's lookup does not need
    config = _open_clip(TowerSpec(architecture, pretrained), lean=True).get_pretrained_cfg(
        architecture, pretrained
    )
    if not config:
        return [
            Problem(
                "weights",
                f"open_clip knows no weights {pretrained!r} for {architecture}",
                f"choose a tag of open_clip.list_pretrained_tags_by_model('{architecture}')",
            )
        ]
    repo = str(config.get("hf_hub", "")).rstrip("/")
    if repo and in_hub_cache(repo, OPEN_CLIP_FILES):
        return []
    name = repo or f"{architecture}:{pretrained}"
    return [
        Problem(
            "weights",
            f"backbone {architecture} ({pretrained}) weights are not in the "
            f"Hugging Face cache ({name})",
            fetch_command(name),
        )
    ]


def segmentation_problems(root: Path, segmentation: dict[str, Any]) -> list[Problem]:
    if segmentation["provider"] == "demo":
        return []
    model_id = segmentation["model_id"]
    if hub_model_present(root, model_id):
        return []
    return [
        Problem(
            "weights",
            f"segmentation model {model_id} ({segmentation['provider']}) is not on this machine",
            fetch_command(model_id),
        )
    ]


def lmm_problems(root: Path, lmm: dict[str, Any]) -> list[Problem]:
    if lmm["provider"] != "transformers" or hub_model_present(root, lmm["model"]):
        return []
    return [
        Problem(
            "weights",
            f"LMM {lmm['model']} (lmm.provider transformers) is not on this machine",
            fetch_command(lmm["model"]),
        )
    ]


def geoclip_problems(
    root: Path, model: dict[str, Any], verification: dict[str, Any]
) -> list[Problem]:
    """GeoCLIP's location encoder (model.gps_init) and GPS gallery (verification.gallery)."""
    from geoloc_core.encoders.geoclip_files import (
        GEOCLIP,
        GPS_GALLERY_FILE,
        INSTALL_HINT,
        LOCATION_ENCODER_FILE,
        resolve_release_file,
    )

    problems = []
    for key, value, relative in (
        ("model.gps_init", model["gps_init"], LOCATION_ENCODER_FILE),
        ("verification.gallery", verification["gallery"], GPS_GALLERY_FILE),
    ):
        if not value:
            continue
        try:
            path = resolve_release_file(value, relative, root)
        except (ModuleNotFoundError, FileNotFoundError):
            install = re.search(r"`([^`]+)`", INSTALL_HINT)
            problems.append(
                Problem(
                    "weights",
                    f"{key}: {value}: the geoclip wheel's {relative} is missing",
                    install[1] if install else INSTALL_HINT,
                )
            )
            continue
        if not path.is_file():
            fix = f"put the file at {path}" if value != GEOCLIP else INSTALL_HINT
            problems.append(Problem("weights", f"{key}: {path} is missing", fix))
    return problems


def weight_problems(root: Path, params: dict[str, Any]) -> list[Problem]:
    return [
        *backbone_problems(root, params["backbone"]),
        *segmentation_problems(root, params["segmentation"]),
        *lmm_problems(root, params["lmm"]),
        *geoclip_problems(root, params["model"], params["verification"]),
    ]
