"""`geoloc import g3`: G3's published g3.pth (and optionally its FAISS index) as this project's
artifacts.

Written under artifacts/imports/g3/:
- backbone/: the checkpoint's own CLIP (vision and text towers and projections) as a
  transformers CLIP directory (config.json, model.safetensors, preprocessor_config.json),
  the frozen backbone `backbone.pretrained` can name;
- model/: the alignment model in the project's format (models/persistence.py) with G3's
  architecture (models/config.py: gps_projection mercator_g3, gps_branch_dim 512, text_head,
  768-d heads) holding G3's head, location-encoder and temperature tensors;
- index/ (with --index and --order): G3's index with rows in the order of
  MP16_Pro_filtered.csv, its id table and checksum (retrieval/index.py's format);
- import.json: the SHA-256 of every source and output (imports/record.py).
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from geoloc_core.encoders.backbone import FeatureSpec
from geoloc_core.file_hash import file_sha256
from geoloc_core.imports.clip_config import VIT_L14_NAME, clip_config, clip_shapes
from geoloc_core.imports.g3_checkpoint import (
    G3_BRANCH_DIM,
    G3_CAPSULE_LAYERS,
    G3_CAPSULE_WIDTH,
    G3_FOURIER_PAIRS,
    G3_SIGMAS,
    G3Checkpoint,
    check_g3,
    read_state_dict,
)
from geoloc_core.imports.record import write_record
from geoloc_core.models.alignment import G3_THIRD_SCALE, GeoAlignmentModel, InputShapes
from geoloc_core.models.config import ModelConfig
from geoloc_core.models.persistence import TrainedModel, save_model
from geoloc_core.models.variants import FROZEN, IMAGE_GPS, IMAGE_TEXT
from geoloc_core.paths import ProjectPaths

KIND = "g3"
BACKBONE = "backbone"
MODEL = "model"
INDEX = "index"
HF_CLIP_PREFIX = "hf-clip:"  # FeatureSpec.architecture of a transformers CLIP directory
G3_RETRIEVAL_PARTS = (FROZEN, IMAGE_TEXT, IMAGE_GPS)  # IndexSearch.py's concatenation order
# G3's heads -> this project's module names (models/alignment.py)
HEAD_NAMES = {
    "vision_projection_else_1": "image_to_text",
    "vision_projection_else_2": "image_to_gps",
    "text_projection_else": "text_head",
    "location_projection_else": "location_projection",
}
SCALE_NAMES = {
    "logit_scale1": f"logit_scales.{IMAGE_TEXT}",
    "logit_scale2": f"logit_scales.{IMAGE_GPS}",
    "logit_scale3": f"logit_scales.{G3_THIRD_SCALE}",
}
Log = Callable[[str], None]


@dataclass(frozen=True)
class ImportedG3:
    folder: Path
    record: dict[str, Any]


def g3_model_config(projection_dim: int) -> ModelConfig:
    """G3's architecture (utils/G3.py) at CLIP projection width projection_dim."""
    return ModelConfig(
        variant="g3",
        embed_dim=projection_dim,
        head_hidden=projection_dim,
        gps_sigmas=G3_SIGMAS,
        gps_fourier_features=2 * G3_FOURIER_PAIRS,
        gps_hidden=G3_CAPSULE_WIDTH,
        gps_layers=G3_CAPSULE_LAYERS,
        gps_init=None,
        gps_projection="mercator_g3",
        gps_branch_dim=G3_BRANCH_DIM,
        text_head=True,
        temperature_init=math.exp(-3.99),  # G3's initial logit scales (overwritten by the file)
    )


def our_state_dict(checkpoint: G3Checkpoint) -> dict[str, torch.Tensor]:
    """G3's head, location-encoder and temperature tensors under this project's names."""
    mapped: dict[str, torch.Tensor] = {}
    for key, value in checkpoint.heads.items():
        stem, _, rest = key.partition(".")
        if stem in HEAD_NAMES:
            mapped[f"{HEAD_NAMES[stem]}.{rest}"] = value
        elif stem in SCALE_NAMES:
            mapped[SCALE_NAMES[stem]] = value
        else:  # location_encoder.LocEnc{i}.capsule.{0,1,3,5} | .head.0
            _, branch, part, index, kind = key.split(".")
            target = f"gps_encoder.branches.{branch.removeprefix('LocEnc')}"
            if part == "head":
                mapped[f"{target}.head.{kind}"] = value
            elif index == "0":  # the Fourier matrix: G3 keeps (pairs, 2), we (2, pairs)
                mapped[f"{target}.rff.matrix"] = value.t().contiguous()
            else:  # capsule = [rff, Linear, ReLU, ...]: Linear k at 2k + 1, ours at 2k
                mapped[f"{target}.mlp.{int(index) - 1}.{kind}"] = value
    return mapped


def import_g3(
    root: Path,
    checkpoint: Path,
    clip_config_file: Path | None = None,
    index_file: Path | None = None,
    order_file: Path | None = None,
    token_grid: int = 4,
    log: Log = print,
) -> ImportedG3:
    """Write artifacts/imports/g3 from G3's files (see the module docstring)."""
    if (index_file is None) != (order_file is None):
        raise ValueError("--index and --order go together: G3's index rows follow the CSV's order")
    paths = ProjectPaths(Path(root))
    config = clip_config(clip_config_file)
    log(f"import g3: reading {checkpoint}")
    parts = check_g3(Path(checkpoint), read_state_dict(Path(checkpoint)), clip_shapes(config))
    folder = paths.imported(KIND)
    scratch = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    weights = write_backbone(scratch / BACKBONE, config, parts)
    log(f"import g3: backbone written ({scratch.name}/{BACKBONE})")
    architecture = HF_CLIP_PREFIX + (
        VIT_L14_NAME if clip_config_file is None else Path(clip_config_file).name
    )
    spec = backbone_spec(
        architecture, str((folder / BACKBONE).relative_to(paths.root)), token_grid, weights
    )
    model = write_model(scratch / MODEL, parts, spec, int(config.vision_config.image_size))
    details: dict[str, Any] = {"model_config": model.config.model_dump(mode="json")}
    sources: dict[str, Path | str] = {"checkpoint": Path(checkpoint)}
    sources["clip_config"] = Path(clip_config_file) if clip_config_file else VIT_L14_NAME
    if index_file is not None and order_file is not None:
        from geoloc_core.imports.g3_index import import_g3_index

        details["index"] = import_g3_index(
            scratch / INDEX, Path(index_file), Path(order_file), scratch / MODEL, log
        )
        sources["index"] = Path(index_file)
        sources["order"] = Path(order_file)
    record = write_record(scratch, KIND, sources, details)
    shutil.rmtree(folder, ignore_errors=True)
    scratch.replace(folder)
    log(f"import g3: written to {folder}")
    log("import g3: to use it in the graph, set (docs/imports.md): " + settings_to_use(spec))
    return ImportedG3(folder, record)


def settings_to_use(spec: FeatureSpec) -> str:
    """The params that make the graph's features the imported model's inputs."""
    values = {
        "backbone.architecture": spec.architecture,
        "backbone.pretrained": spec.pretrained,
        "backbone.pretrain_epochs": 0,
        "features.token_grid": spec.token_grid,
        "train.imported_model": str(Path(str(spec.pretrained)).parent),
    }
    for name, key in (("implementation", "backbone"), ("precision", "features")):
        if hasattr(spec, name):
            values[f"{key}.{name}"] = getattr(spec, name)
    return ", ".join(f"{key}: {value}" for key, value in values.items())


def backbone_spec(
    architecture: str, pretrained: str, token_grid: int, weights: Path
) -> FeatureSpec:
    """The FeatureSpec of the exported backbone. With the transformers backbone (h22a's
    encoders/hf_clip.py: FeatureSpec.implementation and .precision, the directory's digest)
    it names that loader and fp32 features, as G3 computes them; before it, the weights'
    SHA-256."""
    names = {field.name for field in dataclasses.fields(FeatureSpec)}
    digest = file_sha256(weights)
    extra: dict[str, Any] = {}
    if "implementation" in names:
        from geoloc_core.encoders import hf_clip  # type: ignore[attr-defined]

        digest = hf_clip.checkpoint_digest(weights.parent)
        extra = {"implementation": "transformers", "precision": "fp32"}
    return FeatureSpec(architecture, pretrained, token_grid, digest, **extra)


def write_backbone(folder: Path, config, checkpoint: G3Checkpoint) -> Path:
    """The checkpoint's CLIP as a transformers directory; returns its weights file."""
    from transformers import CLIPImageProcessor, CLIPModel

    with torch.device("meta"):
        clip = CLIPModel(config)
    state = dict(checkpoint.clip)
    # G3 has no CLIP temperature of its own: CLIP's initial value, unused by every geoloc step
    state["logit_scale"] = torch.tensor(float(config.logit_scale_init_value))
    clip.load_state_dict(state, strict=True, assign=True)
    for module in clip.modules():  # non-persistent buffers are not in a state dict
        ids = getattr(module, "position_ids", None)
        if isinstance(ids, torch.Tensor) and ids.is_meta:
            module.position_ids = torch.arange(ids.shape[-1]).expand((1, -1))
    clip.save_pretrained(folder, safe_serialization=True)
    size = int(config.vision_config.image_size)
    CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})\
        .save_pretrained(folder)
    return folder / "model.safetensors"


def write_model(
    folder: Path, checkpoint: G3Checkpoint, spec: FeatureSpec, image_size: int
) -> GeoAlignmentModel:
    """The alignment model with G3's architecture and the checkpoint's tensors, saved."""
    width = checkpoint.projection_dim
    shapes = InputShapes(
        pooled_dim=width, token_dim=width, tokens=spec.token_grid**2, text_dim=width
    )
    model = GeoAlignmentModel(g3_model_config(width), shapes)
    model.load_state_dict(our_state_dict(checkpoint), strict=True)
    model.eval()
    save_model(folder, TrainedModel(model, spec, image_size))
    return model
