"""Which weights the frozen towers have (backbone.json), and loading them.

An open_clip tag (full profile: `openai`) or a weights file in the project (the demo's own
pretraining, backbone_pretrain.py); both load through the same open_clip call. Features,
training and prediction all build the towers from this record, so they agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from geoloc_core.encoders.clip_towers import ClipTowers, TowerSpec, build_clip
from geoloc_core.file_hash import file_sha256
from geoloc_core.paths import ProjectPaths


@dataclass(frozen=True)
class BackboneRecord:
    architecture: str
    pretrained: str  # open_clip tag, or a weights file relative to the project root
    weights_sha256: str  # of the file; "tag:<tag>" for a tag

    def tower_spec(self, root: Path) -> TowerSpec:
        """The spec that loads these weights: files resolved against the project root."""
        candidate = Path(root) / self.pretrained
        return TowerSpec(
            self.architecture, str(candidate) if candidate.is_file() else self.pretrained
        )


def write_record(root: Path, record: BackboneRecord) -> Path:
    path = ProjectPaths(Path(root)).backbone_record
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record.__dict__, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def read_record(root: Path) -> BackboneRecord:
    path = ProjectPaths(Path(root)).backbone_record
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: materialize the backbone_weights asset first")
    return BackboneRecord(**json.loads(path.read_text()))


def load_towers(root: Path, record: BackboneRecord, device: str = "cpu") -> ClipTowers:
    spec = record.tower_spec(root)
    if record.weights_sha256.startswith("tag:"):
        return build_clip(spec, device)
    if not Path(spec.pretrained or "").is_file():
        raise FileNotFoundError(
            f"backbone weights {record.pretrained} are missing under {root}: "
            "re-materialize backbone_weights"
        )
    if file_sha256(Path(spec.pretrained)) != record.weights_sha256:
        raise ValueError(
            f"{record.pretrained} changed since backbone_weights recorded it: "
            "re-materialize backbone_weights and everything downstream"
        )
    return build_clip(spec, device)
