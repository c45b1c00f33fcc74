"""Which weights the frozen towers have (backbone.json), and loading them.

An open_clip tag (full profile: `openai`) or a weights file in the project (the demo's own
pretraining, backbone_pretrain.py); both load through the same open_clip call. Or a
transformers CLIP checkpoint (a hub id or a directory, e.g. what `geoloc import g3` writes).
Features, training and prediction all build the towers from this record, so they agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from geoloc_core.encoders.clip_towers import ClipTowers, TowerSpec, build_towers, check_activation
from geoloc_core.encoders.settings import BackboneConfig
from geoloc_core.file_hash import file_sha256
from geoloc_core.paths import ProjectPaths


@dataclass(frozen=True)
class BackboneRecord:
    architecture: str
    pretrained: str  # open_clip tag, or a weights file (directory) relative to the project root
    weights_sha256: str  # of the file (transformers: of the directory); "tag:<tag>" for a tag
    implementation: str = "open_clip"  # written only when it is another (transformers)

    def tower_spec(self, root: Path) -> TowerSpec:
        """The spec that loads these weights: files resolved against the project root."""
        candidate = Path(root) / self.pretrained
        local = candidate.is_dir() if self.implementation == "transformers" else candidate.is_file()
        return TowerSpec(
            self.architecture, str(candidate) if local else self.pretrained, self.implementation
        )

    def to_record(self) -> dict[str, str]:
        record = dict(self.__dict__)
        if record["implementation"] == "open_clip":
            del record["implementation"]  # the first format's records had none
        return record


def write_record(root: Path, record: BackboneRecord) -> Path:
    path = ProjectPaths(Path(root)).backbone_record
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record.to_record(), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def read_record(root: Path) -> BackboneRecord:
    path = ProjectPaths(Path(root)).backbone_record
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: materialize the backbone_weights asset first")
    return BackboneRecord(**json.loads(path.read_text()))


def load_towers(root: Path, record: BackboneRecord, device: str = "cpu") -> ClipTowers:
    """The towers of the record, their weights checked against its digest."""
    spec = record.tower_spec(root)
    if record.weights_sha256.startswith("tag:"):
        return build_towers(spec, device)
    weights = Path(spec.pretrained or "")
    if not (weights.is_dir() if spec.implementation == "transformers" else weights.is_file()):
        raise FileNotFoundError(
            f"backbone weights {record.pretrained} are missing under {root}: "
            "re-materialize backbone_weights"
        )
    if weights_digest(spec) != record.weights_sha256:
        raise ValueError(
            f"{record.pretrained} changed since backbone_weights recorded it: "
            "re-materialize backbone_weights and everything downstream"
        )
    return build_towers(spec, device)


def weights_digest(spec: TowerSpec) -> str:
    """What a record stores for a spec's weights: the file's SHA-256, a transformers
    directory's digest (its config, weights and preprocessing), or "tag:<tag>"."""
    if spec.implementation == "transformers":
        from geoloc_core.encoders.hf_clip import weights_id

        return weights_id(str(spec.pretrained))
    if spec.pretrained and Path(spec.pretrained).is_file():
        return file_sha256(Path(spec.pretrained))
    return f"tag:{spec.pretrained}"


def backbone_spec(config: BackboneConfig, root: Path) -> TowerSpec:
    """The towers params backbone names, a local path resolved against the project root."""
    pretrained = config.pretrained
    if pretrained and (Path(root) / pretrained).exists():
        pretrained = str(Path(root) / pretrained)
    return TowerSpec(config.architecture, pretrained, config.implementation)


def load_backbone(config: BackboneConfig, root: Path, device: str = "cpu") -> ClipTowers:
    """The frozen towers of params backbone, either implementation: the named weights (their
    activation checked), or, when they are pretrained here, the weights backbone_weights
    recorded. Not frozen: call clip_towers.freeze for inference."""
    if config.pretrains:
        return load_towers(root, read_record(root), device)
    spec = backbone_spec(config, root)
    check_activation(spec)
    return build_towers(spec, device)
