"""The predict path: photos -> ranked candidates with place names and a decision.

The same inference as the benchmark assets, in memory: the photo embedded as the caches embed
an image, the index searched for its similar and dissimilar reference images
(steps/candidates.search_neighbours), DualGeo's re-rank (rerank/dbscan.rerank_batch), the LMM
when params lmm.provider asks for one (steps/lmm: the same prompts, runner and parser), and
G3's verification over the same pool (verification/pool). Everything is loaded once, so each
further photo costs only its own inference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from geoloc_core.data.decode import DECODE_ERRORS, describe_failure
from geoloc_core.data.manifest import read_manifest
from geoloc_core.geo.distance import distance_km
from geoloc_core.lmm.cache import JsonRecordCache
from geoloc_core.lmm.errors import LmmStageError
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
from geoloc_core.predict.photos import Photo, exif_position
from geoloc_core.predict.places import PlaceNames
from geoloc_core.predict.results import PhotoResult, Place, RankedCandidate
from geoloc_core.predict.settings import PredictSettings
from geoloc_core.rerank.dbscan import rerank_batch
from geoloc_core.retrieval.index import index_for_search, load_index
from geoloc_core.steps.candidates import SearchResult, search_neighbours
from geoloc_core.steps.indexing import index_record
from geoloc_core.steps.lmm import (
    AnswerRow,
    LmmAnswers,
    Tally,
    ask_lmm,
    dualgeo_query_job,
    g3_query_jobs,
    lmm_backend,
)
from geoloc_core.steps.verification import encode_coordinates, read_gallery
from geoloc_core.verification.pool import (
    SOURCE_GALLERY,
    CandidatePool,
    Decision,
    ExtraPoints,
    decide,
    gallery_extras,
    reranked_pool,
    widen_pool,
    with_reasoning,
)


@dataclass(frozen=True)
class Reranked:
    """Each photo's similar reference images after the re-rank, as (n, k) arrays."""

    positions: np.ndarray  # rows of the index meta
    scores: np.ndarray  # retrieval cosine
    latlon: np.ndarray  # (n, k, 2)
    retrieval_rank: np.ndarray  # 0-based rank in the similarity search
    clustered: np.ndarray  # (n,) bool: the re-rank found a cluster (its order is the re-rank's)


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
        self.segmenter = None
        if self.trained.model.spec.uses_segmentation:
            self.segmenter = PhotoSegmenter(
                project, settings.sections["segmentation"], self.trained.model.config.variant
            )

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
        rerank_batch(np.zeros((1, 2)), np.zeros((1, 2)), self.settings.rerank)

    # -- the path ------------------------------------------------------------------------

    def predict(self, photos: Sequence[Photo]) -> list[PhotoResult]:
        """One result per photo, in order; a photo that cannot be used gets its reason."""
        results = [PhotoResult(photo.name) for photo in photos]
        rows, images = [], []
        for row, photo in enumerate(photos):
            if photo.problem:
                results[row].error = photo.problem
                continue
            try:
                images.append(decode_photo(photo.data, self.trained.image_size))
            except DECODE_ERRORS as exc:
                results[row].error = describe_failure(exc)
                continue
            rows.append(row)
            results[row].exif = exif_position(photo.data)
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
        located = self._locate([photos[r] for r in rows], embeddings)
        for row, (candidates, neighbours, decided_by) in zip(rows, located, strict=True):
            truth = results[row].exif
            if truth is not None and truth.known:
                candidates = _with_errors(candidates, truth.lat, truth.lon)
            results[row].candidates = candidates
            results[row].neighbours = neighbours
            results[row].decided_by = decided_by
        return results

    def _locate(
        self, photos: Sequence[Photo], embeddings: PhotoEmbeddings
    ) -> list[tuple[list[RankedCandidate], list[str], str]]:
        settings = self.settings
        found = search_neighbours(
            self.index, embeddings.retrieval, settings.retrieval, settings.index
        )
        reranked = self._rerank(found.similar.positions, found.similar.scores)
        k = min(settings.verification.pool_size, reranked.scores.shape[1])
        pool = reranked_pool(reranked.latlon[:, :k], reranked.scores[:, :k])
        answers = self._ask_lmm(photos, found, reranked) if settings.lmm_active else None
        g3 = answers is not None and settings.lmm.mode == "g3"
        if g3:
            pool = widen_pool(pool, _extras(answers, len(photos)))
        if settings.verification.gallery:
            latlon, gps = self._gallery
            top = settings.verification.gallery_top
            pool = widen_pool(pool, gallery_extras(embeddings.gps_aligned, latlon, gps, top))
        decision = decide(pool, embeddings.gps_aligned, settings.verification.method, self._encode)
        if answers is not None and not g3:
            decision = with_reasoning(decision, _first_answers(answers, len(photos)))
        ranked = self._ranked(pool, decision, reranked, embeddings.gps_aligned)
        neighbours = [self.reference_ids[row].tolist() for row in found.similar.positions]
        how = [self._decided_by(decision, pool, row) for row in range(len(photos))]
        return list(zip(ranked, neighbours, how, strict=True))

    def _decided_by(self, decision: Decision, pool: CandidatePool, row: int) -> str:
        if decision.by_reasoning[row]:
            return "DualGeo's LMM reasoning over the re-ranked candidates (lmm.mode dualgeo)"
        if decision.cosines is None:
            return "the first re-ranked candidate (verification.method top1)"
        return (
            "geo-verification: the highest cosine in the GPS space among "
            f"{int(pool.valid[row].sum())} candidates (verification.method verify)"
        )

    def _rerank(self, positions: np.ndarray, scores: np.ndarray) -> Reranked:
        latlon = self.reference_latlon[positions]  # (n, k, 2)
        order, _, centres = rerank_batch(latlon[..., 0], latlon[..., 1], self.settings.rerank)
        return Reranked(
            positions=np.take_along_axis(positions, order, axis=1),
            scores=np.take_along_axis(scores, order, axis=1),
            latlon=np.take_along_axis(latlon, order[..., None], axis=1),
            retrieval_rank=order,
            clustered=~np.isnan(centres[:, 0]),
        )

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
        self, photos: Sequence[Photo], found: SearchResult, reranked: Reranked
    ) -> LmmAnswers:
        """G3's geo-diversification prompts or DualGeo's reasoning prompt per photo, through
        the LMM stage's own job builders, runner and parser."""
        settings = self.settings.lmm
        jobs = []
        if settings.mode == "g3":
            similar = self.reference_latlon[found.similar.positions]
            dissimilar = (
                self.reference_latlon[found.dissimilar.positions]
                if found.dissimilar is not None
                else np.zeros((len(photos), 0, 2))
            )
            for row, photo in enumerate(photos):
                near, far = _pairs(similar[row]), _pairs(dissimilar[row])
                built, _ = g3_query_jobs(settings, str(row), photo.data, near, far, row)
                jobs += built
        else:
            top = reranked.positions[:, : settings.dualgeo_top_m]
            unreadable = Tally()
            for row, photo in enumerate(photos):
                ids = self.reference_ids[top[row]]
                shown = [
                    (float(lat), float(lon), place.label, self._reference_photos.get(str(i)))
                    for (lat, lon), place, i in zip(
                        self.reference_latlon[top[row]],
                        self.places.of_references(ids),
                        ids,
                        strict=True,
                    )
                ]
                job = dualgeo_query_job(settings, str(row), photo.data, shown, row, unreadable)
                jobs.append(job)
        cache = (
            JsonRecordCache(settings.cache_path(self.project.root)) if self.project else None
        )
        answers = ask_lmm(settings, lmm_backend(settings), cache, jobs, False, "lmm")
        if answers.stats["stopped_reason"]:
            raise LmmStageError(
                f"the LMM server refused the requests ({answers.stats['stopped_reason']}): "
                f"check lmm.model, lmm.base_url and the key in ${settings.api_key_env}"
            )
        return answers

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

    # -- the answer ----------------------------------------------------------------------

    def _ranked(
        self,
        pool: CandidatePool,
        decision: Decision,
        reranked: Reranked,
        image_gps: np.ndarray,
    ) -> list[list[RankedCandidate]]:
        """Per photo, the pool's candidates best first (by verification cosine, or in pool
        order for top1), DualGeo's answer first when it decided."""
        k = pool.reranked
        slots_by_row = []
        for row in range(len(pool.valid)):
            slots = np.flatnonzero(pool.valid[row])
            if decision.cosines is not None:
                slots = slots[np.argsort(-decision.cosines[row, slots], kind="stable")]
            slots_by_row.append([int(s) for s in slots])
        # reference images are named from the place texts, other points geocoded in one call
        others = [(row, s) for row, slots in enumerate(slots_by_row) for s in slots if s >= k]
        reasoned = [int(r) for r in np.flatnonzero(decision.by_reasoning)]
        points = [pool.coords[r, s] for r, s in others] + [decision.latlon[r] for r in reasoned]
        geocoded = self.places.of_points(np.array(points).reshape(-1, 2))
        place_of = dict(zip(others, geocoded, strict=False))
        reasoning_cosines = self._cosines(decision.latlon[reasoned], image_gps[reasoned])
        ranked = []
        for row, slots in enumerate(slots_by_row):
            ids = self.reference_ids[reranked.positions[row, [s for s in slots if s < k]]]
            named = iter(self.places.of_references(ids))
            items = [
                self._candidate(
                    pool, decision, reranked, row, s, next(named) if s < k else place_of[row, s]
                )
                for s in slots
            ]
            ranked.append(items)
        for at, row in enumerate(reasoned):
            lat, lon = (float(v) for v in decision.latlon[row])
            cosine = None if reasoning_cosines is None else float(reasoning_cosines[at])
            answer = RankedCandidate(
                rank=0,
                lat=lat,
                lon=lon,
                score=cosine,
                source="lmm",
                stage=str(decision.source[row]),
                place=geocoded[len(others) + at],
                decision=True,
                verification_score=cosine,
            )
            ranked[row].insert(0, answer)
        return [_numbered(items) for items in ranked]

    def _candidate(
        self,
        pool: CandidatePool,
        decision: Decision,
        reranked: Reranked,
        row: int,
        slot: int,
        place: Place,
    ) -> RankedCandidate:
        lat, lon = (float(v) for v in pool.coords[row, slot])
        stage = str(pool.sources[row, slot])
        cosine = None if decision.cosines is None else float(decision.cosines[row, slot])
        chosen = slot == int(decision.chosen[row]) and not decision.by_reasoning[row]
        if slot >= pool.reranked:
            return RankedCandidate(
                rank=0,
                lat=lat,
                lon=lon,
                score=cosine,
                source="gallery" if stage == SOURCE_GALLERY else "lmm",
                stage=stage,
                place=place,
                decision=bool(chosen),
                verification_score=cosine,
            )
        retrieval_score = float(reranked.scores[row, slot])
        return RankedCandidate(
            rank=0,
            lat=lat,
            lon=lon,
            score=cosine if cosine is not None else retrieval_score,
            source="re-rank" if reranked.clustered[row] else "retrieval",
            stage=stage,
            place=place,
            decision=bool(chosen),
            ref_id=str(self.reference_ids[reranked.positions[row, slot]]),
            retrieval_rank=int(reranked.retrieval_rank[row, slot]) + 1,
            retrieval_score=retrieval_score,
            verification_score=cosine,
        )

    def _cosines(self, latlon: np.ndarray, image_gps: np.ndarray) -> np.ndarray | None:
        """cos(image, point) in the GPS space per row (method verify), else None."""
        if self.settings.verification.method != "verify" or not len(latlon):
            return None
        encoded = self._encode(np.asarray(latlon, np.float64))
        return np.einsum("nd,nd->n", image_gps, encoded).astype(np.float64)


def _pairs(latlon: np.ndarray) -> list[tuple[float, float]]:
    return [(float(a), float(b)) for a, b in latlon]


def _as_written(value: float) -> float:
    """A coordinate as the LMM stage's answers file stores it (6 decimals)."""
    return float(f"{value:.6f}")


def _by_row(answers: LmmAnswers, n: int) -> list[list[AnswerRow]]:
    grouped = answers.by_query()
    return [grouped.get(str(row), []) for row in range(n)]


def _extras(answers: LmmAnswers, n: int) -> list[ExtraPoints | None]:
    """G3's answers per photo as its pool's extra points (in the answers file's order)."""
    extras: list[ExtraPoints | None] = []
    for rows in _by_row(answers, n):
        if not rows:
            extras.append(None)
            continue
        latlon = np.array([[_as_written(r[4]), _as_written(r[5])] for r in rows], np.float64)
        extras.append(ExtraPoints(latlon, np.array([r[3] for r in rows], dtype=object)))
    return extras


def _first_answers(answers: LmmAnswers, n: int) -> list[tuple[float, float] | None]:
    """DualGeo's decision per photo: its first answer (lowest sample), None without one."""
    first = []
    for rows in _by_row(answers, n):
        best = min(rows, key=lambda r: r[1]) if rows else None
        first.append((_as_written(best[4]), _as_written(best[5])) if best else None)
    return first


def _with_errors(
    candidates: list[RankedCandidate], lat: float, lon: float
) -> list[RankedCandidate]:
    """Each candidate with its geodesic distance (WGS-84, as the metrics) to the EXIF truth."""
    if not candidates:
        return candidates
    km = distance_km(
        np.full(len(candidates), lat),
        np.full(len(candidates), lon),
        np.array([c.lat for c in candidates]),
        np.array([c.lon for c in candidates]),
        "geodesic",
    )
    return [replace(c, error_km=float(d)) for c, d in zip(candidates, km, strict=True)]


def _numbered(items: list[RankedCandidate]) -> list[RankedCandidate]:
    return [replace(item, rank=rank) for rank, item in enumerate(items, start=1)]


def predict_images(root: Path, images: Sequence[Path], top_k: int = 5) -> list[dict]:
    """The project's predict path over image files: one JSON-ready dict per file, in order."""
    from geoloc_core.params import load_params
    from geoloc_core.predict.photos import read_photo

    predictor = Predictor.of_project(root, PredictSettings.from_params(load_params(root)))
    photos = [read_photo(Photo(str(p), path=Path(p))) for p in images]
    return [result.as_dict(top_k) for result in predictor.predict(photos)]

