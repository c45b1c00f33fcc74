"""The predict path: photos -> ranked candidates with place names and a decision.

The Predictor loads what inference needs once (model, towers, index, place names, gallery) and
runs the inference chain in memory, the same functions the benchmark steps wrap with their
files: the photo embedded as the caches embed an image, the search for similar and dissimilar
reference images (inference/search), DualGeo's re-rank (inference/rerank), the LMM when params
lmm.provider asks for one (lmm/jobs and inference/lmm: the same prompts, runner and parser),
and G3's verification over the same pool (inference/pool, inference/decision), and the
decision's confidence radii (confidence/, calibrated on validation). How the result is shown
is ranking.py's. Each further photo costs only its own inference.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from geoloc_core.confidence.calibration import read_calibration
from geoloc_core.data.loader import DecodedBatch
from geoloc_core.data.manifest import read_manifest
from geoloc_core.inference.decision import Decision, decide, first_answers
from geoloc_core.inference.lmm import LmmAnswers, ask_lmm
from geoloc_core.inference.pool import (
    CandidatePool,
    ExtraPoints,
    Gallery,
    answer_extras,
    candidate_pool,
)
from geoloc_core.inference.rerank import rerank_neighbours
from geoloc_core.inference.search import SearchResult, search_neighbours
from geoloc_core.lmm.backend import lmm_backend
from geoloc_core.lmm.cache import JsonRecordCache
from geoloc_core.lmm.errors import LmmStageError
from geoloc_core.lmm.jobs import ShownCandidate, Tally, dualgeo_jobs, g3_jobs
from geoloc_core.models.persistence import load_model
from geoloc_core.paths import ProjectPaths
from geoloc_core.predict.embed import (
    PhotoEmbeddings,
    PhotoSegmenter,
    decode_photo,
    embed_photos,
    frozen_towers,
)
from geoloc_core.predict.files import PredictFiles
from geoloc_core.predict.non_photo import non_photo_exemplars
from geoloc_core.predict.photos import Photo
from geoloc_core.predict.places import PlaceNames
from geoloc_core.predict.ranking import CandidateRanking, Located, decided_by, with_errors
from geoloc_core.predict.results import Confidence, PhotoResult, RankedCandidate
from geoloc_core.predict.settings import PredictSettings
from geoloc_core.predict.usable import usable_photos
from geoloc_core.retrieval.index import index_for_search, load_index
from geoloc_core.retrieval.index_record import index_record
from geoloc_core.verification.gallery import read_gallery
from geoloc_core.verification.gps_encoder import encode_coordinates


class Predictor:
    """Loads the trained artifacts once; `predict` geolocates photos in memory."""

    def __init__(
        self,
        files: PredictFiles,
        settings: PredictSettings,
        project: ProjectPaths | None = None,
    ) -> None:
        self.files = files
        self.settings = settings
        self.project = project
        self.trained = load_model(files.model_dir)
        self.towers = frozen_towers(self.trained.features, files.towers_weights)
        self.parts = tuple(index_record(ProjectPaths(files.root))["parts"])
        self.index = index_for_search(load_index(files.index_file), settings.index)
        meta = read_manifest(files.index_meta)
        self.reference_ids = meta["id"].astype(str).to_numpy()
        self.reference_latlon = meta[["lat", "lon"]].to_numpy(np.float64)
        self.places = PlaceNames(files.place_texts, settings.geocoder)
        self.ranking = CandidateRanking(
            self.reference_ids, self.places, self._encode, settings.verification.method
        )
        self.calibration = None if files.confidence is None else read_calibration(files.confidence)
        self.segmenter = None
        self.non_photo = None
        if self.trained.model.spec.uses_segmentation:
            self.segmenter = PhotoSegmenter(
                project, settings.sections["segmentation"], self.trained.model.config.variant
            )
        else:
            self.non_photo = non_photo_exemplars(self._retrieval_of, self.trained.image_size)

    @classmethod
    def of_project(cls, root: Path, settings: PredictSettings) -> Predictor:
        paths = ProjectPaths(Path(root))
        return cls(PredictFiles.of_project(paths.root, settings), settings, paths)

    @classmethod
    def of_bundle(cls, folder: Path) -> Predictor:
        """A served model's bundle: its own files and params, no project."""
        from geoloc_core.params import load_params

        files = PredictFiles.of_bundle(folder)
        return cls(files, PredictSettings.from_params(load_params(files.root)))

    @property
    def variant(self) -> str:
        return self.trained.model.config.variant

    def describe(self) -> dict[str, object]:
        """The model the answers come from (the JSON output's `model`)."""
        return {
            "variant": self.variant,
            "retrieval_parts": list(self.parts),
            "reference_images": len(self.reference_ids),
            "backbone": self.trained.features.architecture,
        }

    def warm_up(self) -> None:
        """Pay the first forward pass and the clustering library's import now (a server's
        load), not on the first request; asks no LMM."""
        size = self.trained.image_size
        if self.segmenter is None:
            blank = np.full((1, size, size, 3), 128, np.uint8)
            embed_photos(self.trained, self.towers, blank, None, self.parts)
        rerank_neighbours(np.zeros((1, 2)), np.zeros((1, 2)), self.settings.rerank)

    # -- the path ------------------------------------------------------------------------

    def predict(
        self, photos: Sequence[Photo], decoded: DecodedBatch | None = None
    ) -> list[PhotoResult]:
        """One result per photo, in order; a photo that cannot be used gets its reason.
        decoded: the photos' pixels, already decoded by worker processes (command.py)."""

        def decode(row: int, photo: Photo) -> np.ndarray:
            if decoded is None:
                return decode_photo(photo.data, self.towers.transform)
            return decoded.image_at(row)

        usable = usable_photos(photos, decode)
        results, rows, images = usable.results, usable.rows, usable.images
        if not rows:
            return results
        stack = np.stack(images)
        label_maps = None
        if self.segmenter is not None:
            chosen = [photos[r] for r in rows]
            label_maps, failed = self.segmenter.segment(
                [p.name for p in chosen], [p.path for p in chosen], [p.data for p in chosen]
            )
            for local, reason in failed.items():
                results[rows[local]].error = reason
            keep = [local for local in range(len(rows)) if local not in failed]
            rows, stack, label_maps = [rows[i] for i in keep], stack[keep], label_maps[keep]
            if not rows:
                return results
        embeddings = embed_photos(self.trained, self.towers, stack, label_maps, self.parts)
        located, nearest = self._locate([photos[r] for r in rows], embeddings)
        non_photo = [None] * len(rows)
        if self.non_photo is not None:
            non_photo = self.non_photo.warnings(embeddings.retrieval, nearest)
        for local, row in enumerate(rows):
            candidates, neighbours, how, sure = located[local]
            truth = results[row].exif
            if truth is not None and truth.known:
                candidates = with_errors(candidates, truth.lat, truth.lon)
            results[row].candidates = candidates
            results[row].neighbours = neighbours
            results[row].decided_by = how
            results[row].confidence = sure
            if self.files.far is not None and candidates:
                results[row].warning = self.files.far.warning(candidates[0].score)
            if results[row].warning is None and candidates:
                results[row].warning = non_photo[local]
        return results

    def _retrieval_of(self, images: np.ndarray) -> np.ndarray:
        return embed_photos(self.trained, self.towers, images, None, self.parts).retrieval

    def _locate(
        self, photos: Sequence[Photo], embeddings: PhotoEmbeddings
    ) -> tuple[list[tuple[list[RankedCandidate], list[str], str, Confidence | None]], np.ndarray]:
        """The chain: search -> rerank -> LMM -> pool -> decision, then the ranking and the
        decision's confidence; with each photo's best retrieval score."""
        settings = self.settings
        found = search_neighbours(
            self.index, embeddings.retrieval, settings.retrieval, settings.index
        )
        latlon = self.reference_latlon[found.similar.positions]  # (n, k, 2)
        reranked = rerank_neighbours(latlon[..., 0], latlon[..., 1], settings.rerank)
        positions = reranked.reorder(found.similar.positions)
        scores = reranked.reorder(found.similar.scores)
        answers = self._ask_lmm(photos, found, positions) if settings.lmm_active else None
        g3 = answers is not None and settings.lmm.mode == "g3"
        reasoning = _first_answers(answers, len(photos)) if answers and not g3 else None
        gallery = None
        if settings.verification.gallery:
            gallery = Gallery(*self._gallery, settings.verification.gallery_top)
        pool = candidate_pool(
            reranked.reorder(latlon),
            scores,
            settings.verification.pool_size,
            embeddings.gps_aligned,
            lmm_extras=_extras(answers, len(photos)) if g3 else None,
            gallery=gallery,
        )
        decision = decide(
            pool,
            embeddings.gps_aligned,
            settings.verification.method,
            self._encode,
            reasoning=reasoning,
        )
        located = Located(
            positions=positions,
            scores=scores,
            retrieval_rank=reranked.order,
            clustered=reranked.clustered,
            pool=pool,
            decision=decision,
            image_gps=embeddings.gps_aligned,
        )
        ranked = self.ranking.ranked(located)
        neighbours = [self.reference_ids[row].tolist() for row in found.similar.positions]
        how = [decided_by(located, row) for row in range(len(photos))]
        sure = self._confidence(pool, decision)
        located_rows = list(zip(ranked, neighbours, how, sure, strict=True))
        return located_rows, found.similar.scores[:, 0]

    def _confidence(self, pool: CandidatePool, decision: Decision) -> list[Confidence | None]:
        """Each decision's confidence radii (the calibration's whole model: a new photo is no
        calibration query); None each without a calibration."""
        calibration = self.calibration
        if calibration is None:
            return [None] * len(pool.valid)
        features = calibration.features(pool, decision)
        radii = calibration.radii(features, calibration.levels)
        return [
            Confidence(
                radii=tuple((level, float(radii[level][row])) for level in calibration.levels),
                calibrated_on=calibration.benchmark,
                spread_km=float(features.spread_km[row]),
                agreement=float(features.agreement[row]),
                margin=float(features.margin[row]),
            )
            for row in range(len(pool.valid))
        ]

    def _encode(self, latlon: np.ndarray) -> np.ndarray:
        return encode_coordinates(self.trained.model, latlon)

    @cached_property
    def _gallery(self) -> tuple[np.ndarray, np.ndarray]:
        """The gallery's points and their GPS embeddings, encoded once per process."""
        assert self.files.gallery is not None
        latlon = read_gallery(self.files.gallery)
        return latlon, self._encode(latlon)

    # -- the LMM -------------------------------------------------------------------------

    def _ask_lmm(
        self, photos: Sequence[Photo], found: SearchResult, reranked_positions: np.ndarray
    ) -> LmmAnswers:
        """G3's geo-diversification prompts or DualGeo's reasoning prompt per photo, through
        the LMM stage's own job builders, runner and parser."""
        settings = self.settings.lmm
        ids = [str(row) for row in range(len(photos))]
        images = [photo.data for photo in photos]
        if settings.mode == "g3":
            similar = self.reference_latlon[found.similar.positions]
            dissimilar = (
                self.reference_latlon[found.dissimilar.positions]
                if found.dissimilar is not None
                else np.zeros((len(photos), 0, 2))
            )
            near = [_pairs(similar[row]) for row in range(len(photos))]
            far = [_pairs(dissimilar[row]) for row in range(len(photos))]
            jobs, _ = g3_jobs(settings, ids, images, near, far)
        else:
            top = reranked_positions[:, : settings.dualgeo_top_m]
            shown = [self._shown(top[row]) for row in range(len(photos))]
            jobs = dualgeo_jobs(settings, ids, images, shown, Tally())
        cache = JsonRecordCache(settings.cache_path(self.project.root)) if self.project else None
        answers = ask_lmm(settings, lmm_backend(settings), cache, jobs, False, "lmm")
        if answers.stats["stopped_reason"]:
            raise LmmStageError(
                f"the LMM server refused the requests ({answers.stats['stopped_reason']}): "
                f"check lmm.model, lmm.base_url and the key in ${settings.api_key_env}"
            )
        return answers

    def _shown(self, positions: np.ndarray) -> list[ShownCandidate]:
        """A photo's top re-ranked candidates as DualGeo's prompt shows them."""
        ids = self.reference_ids[positions]
        return [
            (float(lat), float(lon), place.label, self._reference_photos.get(str(i)))
            for (lat, lon), place, i in zip(
                self.reference_latlon[positions], self.places.of_references(ids), ids, strict=True
            )
        ]

    @cached_property
    def _reference_photos(self) -> dict[str, Path]:
        """Reference id -> its photo, shown to DualGeo's LMM; a bundle has none (the
        candidates are then shown with their coordinates and place names only)."""
        if self.project is None or not self.project.reference_manifest.is_file():
            return {}
        table = read_manifest(self.project.reference_manifest)
        return {
            str(i): self.project.root / str(image)
            for i, image in zip(table["id"], table["image"], strict=True)
        }


def _pairs(latlon: np.ndarray) -> list[tuple[float, float]]:
    return [(float(a), float(b)) for a, b in latlon]


def _extras(answers: LmmAnswers, n: int) -> list[ExtraPoints | None]:
    """G3's answers per photo as its pool's extra points (in the answers file's order)."""
    query_ids, sources, _, latlon = answers.columns()
    return answer_extras([str(row) for row in range(n)], query_ids, sources, latlon)


def _first_answers(answers: LmmAnswers, n: int) -> list[tuple[float, float] | None]:
    """DualGeo's decision per photo: its first answer (lowest sample), None without one."""
    query_ids, _, samples, latlon = answers.columns()
    return first_answers([str(row) for row in range(n)], query_ids, samples, latlon)


def predict_images(root: Path, images: Sequence[Path], top_k: int = 5) -> list[dict]:
    """The project's predict path over image files: one JSON-ready dict per file, in order."""
    from geoloc_core.params import load_params
    from geoloc_core.predict.photos import read_photo

    predictor = Predictor.of_project(root, PredictSettings.from_params(load_params(root)))
    photos = [read_photo(Photo(str(p), path=Path(p))) for p in images]
    return [result.as_dict(top_k) for result in predictor.predict(photos)]
