"""`geoloc predict PHOTO|FOLDER|GLOB … [--top-k K] [--all-views] [--json] [--map OUT.png]`.

Photos are read and geolocated a chunk at a time under a progress bar (stderr); a photo that
cannot be used is reported with its reason and never stops the others. Exit status: 0 when
every photo was located, 1 when some could not be; a setup problem (no trained artifacts, a
bad setting, an LMM that refuses) raises before any photo is read, for the caller's one-line
error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from tqdm import tqdm

from geoloc_core.data.decode import ImageDecodeError
from geoloc_core.data.loader_settings import LoaderSettings
from geoloc_core.params import load_params
from geoloc_core.paths import ProjectPaths
from geoloc_core.predict.files import PredictFiles
from geoloc_core.predict.photos import Photo, expand_arguments, read_photo
from geoloc_core.predict.settings import PredictSettings

if TYPE_CHECKING:
    import numpy as np

    from geoloc_core.data.clip_preprocess import ImageTransform
    from geoloc_core.data.loader import DecodedBatch

CHUNK = 16  # photos decoded and embedded together: bounds memory on a folder of thousands


@dataclass(frozen=True)
class PredictRequest:
    arguments: list[str]
    top_k: int = 5
    as_json: bool = False
    map_out: Path | None = None
    progress: bool = True
    all_views: bool = False  # every reference view listed, not one entry per place
    model: Path | None = None  # an imported GeoCLIP folder (docs/imports.md); None: the project's


def decode_photo_file(photo: Photo, transform: ImageTransform) -> np.ndarray:
    """What a worker process does for one photo: read it and decode it as the predictor would."""
    from geoloc_core.predict.embed import decode_photo

    read = read_photo(photo)
    if read.problem:
        raise ImageDecodeError(read.problem)
    return decode_photo(read.data, transform)


def _decoded(
    batches: list[list[tuple[str, Photo]]],
    transform: ImageTransform | None,
    loader: LoaderSettings,
) -> Iterator[DecodedBatch | None]:
    """Each chunk's pixels from params loader's worker processes, in order (workers 0: None,
    and the predictor decodes each chunk itself, as an imported GeoCLIP always does)."""
    if not loader.workers or transform is None:
        return iter([None] * len(batches))
    from geoloc_core.data.loader import decoded_batches  # torch: only with workers

    return decoded_batches(
        batches,
        partial(decode_photo_file, transform=transform),
        None,
        loader.options(on_cuda=False),
    )


def run_predict(
    root: Path, request: PredictRequest, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout  # looked up per call: the streams may have been replaced
    err = err or sys.stderr
    if request.top_k < 1:
        raise ValueError(f"--top-k {request.top_k}: must be at least 1")
    params = load_params(root)
    settings = PredictSettings.from_params(params)
    loader = LoaderSettings.from_section(params["loader"])
    expanded = expand_arguments(request.arguments)
    if expanded.skipped:
        names = ", ".join(str(p) for p in expanded.skipped[:5])
        more = " …" if len(expanded.skipped) > 5 else ""
        err.write(
            f"geoloc: skipped {len(expanded.skipped)} file(s) of the folders given whose names "
            f"are not image names: {names}{more}\n"
        )
    if request.model is not None:  # an imported GeoCLIP: its gallery is the only pool
        from geoloc_core.imports.geoclip_predict import GeoClipPredictor

        predictor = GeoClipPredictor(request.model, settings.geocoder, request.top_k)
    else:
        files = PredictFiles.of_project(root, settings)  # refuses at once when nothing is built
        from geoloc_core.predict.predictor import Predictor  # torch and FAISS: only now

        predictor = Predictor(files, settings, ProjectPaths(root))
        if predictor.calibration is None:
            err.write(
                "geoloc: no confidence calibration in this project yet, so the answers carry no "
                "confidence radii: materialize it with `geoloc materialize --group verification`\n"
            )
    results = []
    photos = expanded.photos
    with tqdm(
        total=len(photos), desc="predict", unit="photo", file=err, disable=not request.progress
    ) as bar:
        pairs = [(p.name, p) for p in photos]
        batches = [pairs[start : start + CHUNK] for start in range(0, len(pairs), CHUNK)]
        transform = None if request.model is not None else predictor.towers.transform
        for batch, decoded in zip(batches, _decoded(batches, transform, loader), strict=True):
            chunk: list[Photo] = [read_photo(p) for _, p in batch]
            results += predictor.predict(chunk, decoded) if decoded else predictor.predict(chunk)
            bar.update(len(chunk))
    if request.map_out is not None and any(r.candidates for r in results):
        from geoloc_core.predict.map import draw_map

        path, panels = draw_map(results, request.map_out, request.top_k, request.all_views)
        err.write(f"geoloc: map of {panels} photo(s) written to {path}\n")
    elif request.map_out is not None:
        err.write("geoloc: no photo was located, so no map was written\n")
    failed = sum(1 for r in results if r.error)
    if request.as_json:
        document = {
            "model": predictor.describe(),
            "settings": settings.summary(),
            "images": [r.as_dict(request.top_k, request.all_views) for r in results],
            "located": len(results) - failed,
            "failed": failed,
        }
        out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    else:
        from geoloc_core.predict.render import render

        out.write(render(results, request.top_k, request.all_views))
    return 1 if failed else 0
