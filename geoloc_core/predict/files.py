"""Which files the predict path reads, in a project or in a served model's bundle.

One list for both, so the bundle holds exactly what prediction reads: the trained model
(weights + config), the frozen towers' weights, the FAISS index with its meta and record, the
place texts, the gallery when verification uses one, the confidence calibration (when it has
been fitted: without it answers carry no confidence radii, and say so), and the checksum
written beside any of them; also the far-photo warning's threshold, calibrated on the
project's validation decisions (a bundle records it in bundle.json). A project missing some
of them gets one line naming the command that builds them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from geoloc_core.paths import ProjectPaths
from geoloc_core.predict.far_warning import CALIBRATION_BENCHMARK, FarCalibration, calibrate
from geoloc_core.predict.settings import PredictSettings

BUNDLE_RECORD = "bundle.json"
BUNDLE_FORMAT = "geoloc-predict-bundle/1"
CHECKSUM_SUFFIX = ".sha256"  # a file's recorded digest, written beside it
TAG_PREFIX = "tag:"


class ArtifactsMissing(FileNotFoundError):
    """The trained artifacts are not there (yet); the message says what builds them."""


@dataclass(frozen=True)
class PredictFiles:
    root: Path  # a project root or a bundle folder: the relative paths below resolve here
    model_dir: Path
    towers_weights: Path | None  # None: an open_clip tag (loaded by open_clip itself)
    index_file: Path
    index_meta: Path
    index_record: Path
    place_texts: Path
    gallery: Path | None
    far: FarCalibration | None = None  # the warning's threshold (None: no validation results)
    confidence: Path | None = None  # the confidence calibration (None: not fitted yet)

    def required(self) -> list[Path]:
        """Every file read, in a stable order; checksum sidecars where they exist."""
        layout = ProjectPaths(self.root)  # a bundle is laid out as a project
        files = [layout.model_weights, layout.model_config]
        if self.towers_weights is not None:
            files.append(self.towers_weights)
        files += [self.index_file, self.index_meta, self.index_record, self.place_texts]
        if self.gallery is not None:
            files.append(self.gallery)
        if self.confidence is not None:
            files.append(self.confidence)
        sidecars = [f.with_name(f.name + CHECKSUM_SUFFIX) for f in files]
        return files + [s for s in sidecars if s.is_file()]

    @classmethod
    def of_project(cls, root: Path, settings: PredictSettings) -> PredictFiles:
        """The project's files, or ArtifactsMissing naming what to materialize."""
        paths = ProjectPaths(Path(root))
        _require_built(paths)
        return cls(
            root=paths.root,
            model_dir=paths.model_dir,
            towers_weights=_towers_weights(paths),
            index_file=paths.index_file,
            index_meta=paths.index_meta,
            index_record=paths.index_record,
            place_texts=paths.place_texts,
            gallery=_gallery(paths.root, settings),
            far=calibrate(
                paths.predictions(CALIBRATION_BENCHMARK), paths.errors(CALIBRATION_BENCHMARK)
            ),
            confidence=(
                paths.confidence_calibration if paths.confidence_calibration.is_file() else None
            ),
        )

    @classmethod
    def of_bundle(cls, folder: Path) -> PredictFiles:
        """A bundle laid out like a project (see geoloc_core/serving/bundle.py)."""
        folder = Path(folder)
        record_file = folder / BUNDLE_RECORD
        if not record_file.is_file():
            raise FileNotFoundError(f"{folder} is not a predict bundle: {BUNDLE_RECORD} missing")
        record = json.loads(record_file.read_text())
        if record.get("format") != BUNDLE_FORMAT:
            raise ValueError(
                f"{record_file} has format {record.get('format')!r}, this geoloc reads "
                f"{BUNDLE_FORMAT}: log the served model again with this version"
            )
        paths = ProjectPaths(folder)

        def located(relative: str | None) -> Path | None:
            return folder / relative if relative else None

        return cls(
            root=folder,
            model_dir=paths.model_dir,
            towers_weights=located(record["towers_weights"]),
            index_file=paths.index_file,
            index_meta=paths.index_meta,
            index_record=paths.index_record,
            place_texts=paths.place_texts,
            gallery=located(record["gallery"]),
            far=FarCalibration(**record["far_warning"]) if record.get("far_warning") else None,
            confidence=located(record.get("confidence")),
        )


# (what, the asset that writes it, its group): in the order the graph builds them
_ARTIFACTS = (
    ("place texts", "place_texts", "texts"),
    ("backbone weights", "backbone_weights", "features"),
    ("trained model", "alignment_model", "model"),
    ("retrieval index", "retrieval_index", "index"),
)


def _missing(paths: ProjectPaths) -> dict[str, Path]:
    """What is absent: name -> the file or folder that should hold it."""
    missing: dict[str, Path] = {}
    if not paths.place_texts.is_file():
        missing["place texts"] = paths.place_texts
    if not paths.backbone_record.is_file():
        missing["backbone weights"] = paths.backbone_dir
    if not (paths.model_weights.is_file() and paths.model_config.is_file()):
        missing["trained model"] = paths.model_dir
    index_files = (paths.index_file, paths.index_meta, paths.index_record)
    if not all(f.is_file() for f in index_files):
        missing["retrieval index"] = paths.index_dir
    return missing


def _require_built(paths: ProjectPaths) -> None:
    missing = _missing(paths)
    if not missing:
        return
    what = "; ".join(f"no {name} in {where}" for name, where in missing.items())
    groups = [group for name, _, group in _ARTIFACTS if name in missing]
    if not paths.reference_manifest.is_file():
        fix = (
            "nothing is materialized yet: run `make demo` (the whole demo pipeline), or "
            "`geoloc materialize --all`"
        )
    else:
        fix = (
            "build them with `geoloc materialize "
            + " ".join(f"--group {g}" for g in groups)
            + "` (or `geoloc materialize --all --stale` for everything missing, or `make demo`)"
        )
    raise ArtifactsMissing(f"{what}: {fix}")


def _towers_weights(paths: ProjectPaths) -> Path | None:
    """The weights file the model's frozen towers load (config.json's features; a directory for
    a transformers checkpoint), None for an open_clip tag or a hub id."""
    features = json.loads(paths.model_config.read_text())["features"]
    if str(features["weights_sha256"]).startswith(TAG_PREFIX):
        return None
    weights = paths.root / str(features["pretrained"])
    if not weights.exists():
        raise ArtifactsMissing(
            f"no backbone weights at {weights} (the trained model's towers): build them with "
            "`geoloc materialize --group features` and re-train (`--group model --group index`)"
        )
    return weights


def _gallery(root: Path, settings: PredictSettings) -> Path | None:
    """verification.gallery's CSV when one is configured (`geoclip`: the wheel's file)."""
    if not settings.verification.gallery:
        return None
    from geoloc_core.encoders.geoclip_files import GPS_GALLERY_FILE, resolve_release_file

    gallery = resolve_release_file(str(settings.verification.gallery), GPS_GALLERY_FILE, root)
    if not gallery.is_file():
        raise FileNotFoundError(f"verification.gallery {gallery} does not exist")
    return gallery
