"""The artifact catalogue: where every step reads and writes, relative to the project root, and
the columns of the tables the steps hand each other (one place to change either)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# -- the columns of the tables steps write and read ------------------------------------------

# candidates: the top-k similar and dissimilar reference images of each query
CANDIDATE_COLUMNS = ("query_id", "kind", "rank", "ref_id", "lat", "lon", "score", "place")
# the query embeddings' ids, in the order of their vectors
QUERY_ID_COLUMNS = ("id",)
# rerank: each query's similar candidates in the re-ranked order
RERANK_COLUMNS = (
    "query_id",
    "rank",
    "orig_rank",
    "ref_id",
    "lat",
    "lon",
    "score",
    "place",
    "cluster",
)
# lmm, lmm_reasoning: the answers that parse
ANSWER_COLUMNS = ("query_id", "source", "sample", "lat", "lon")
# predictions: the decision beside the ground truth and what each stage alone predicted
PREDICTION_COLUMNS = (
    "id",
    "lat",
    "lon",
    "pred_lat",
    "pred_lon",
    "score",
    "source",
    "top1_lat",
    "top1_lon",
    "rerank_lat",
    "rerank_lon",
)
# predictions, with a confidence calibration: what the decision's confidence comes from, then
# one radius column per stated level (confidence.calibration.radius_column: radius_50_km, ...)
CONFIDENCE_FEATURE_COLUMNS = ("spread_km", "agreement", "margin")
RADIUS_COLUMN = re.compile(r"radius_([0-9.]+)_km")  # the level in percent


def radius_column(level: float) -> str:
    """The column of a confidence level's radius: radius_50_km for 0.5."""
    return f"radius_{level * 100:g}_km"


def radius_level(column: str) -> float | None:
    """The level of a radius column (0.5 for radius_50_km); None for any other column."""
    match = RADIUS_COLUMN.fullmatch(column)
    return None if match is None else float(match.group(1)) / 100


# radii: each decision's radius (km) at every level of the reliability curve, one column per
# level (radius_5_km ... radius_95_km, the stated levels among them)
RADII_ID_COLUMNS = ("id",)
# Columns of the predictions file holding what each stage alone would have predicted.
STAGE_COLUMNS: dict[str, tuple[str, str]] = {
    "retrieval": ("top1_lat", "top1_lon"),
    "rerank": ("rerank_lat", "rerank_lon"),
}
# errors: each prediction's distance to the truth
ERROR_COLUMNS = ("id", "error_km")
# baselines: each baseline's predictions; `neighbour` is the reference image whose place it guessed
BASELINE_COLUMNS = ("id", "lat", "lon", "pred_lat", "pred_lon", "neighbour")
# an embedding shard's ids, in the order of its vectors
SHARD_ID_COLUMNS = ("id", "lat", "lon")

REFERENCE = "reference"  # the reference manifest's name beside the benchmarks' (gate reports)
# Where each LMM mode's answers go: G3's geo-diversification feeds the verification pool;
# DualGeo's reasoning over the re-ranked candidates is the decision.
LMM_FOLDERS = {"g3": "lmm", "dualgeo": "lmm_reasoning"}


@dataclass(frozen=True)
class ProjectPaths:
    root: Path

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    # -- manifests -------------------------------------------------------------------------

    @property
    def manifests(self) -> Path:
        return self.artifacts / "manifests"

    @property
    def reference_manifest(self) -> Path:
        return self.manifests / "reference.csv"

    @property
    def quarantine(self) -> Path:
        return self.manifests / "quarantine.csv"

    def benchmark_manifest(self, benchmark: str) -> Path:
        return self.manifests / "benchmarks" / f"{benchmark}.csv"

    def quarantine_report(self, name: str) -> Path:
        """The quarantined rows of the reference manifest (name REFERENCE) or of a benchmark."""
        if name == REFERENCE:
            return self.quarantine
        return self.manifests / "quarantine" / f"{name}.csv"

    def validation_report(self, name: str) -> Path:
        """The gate's JSON report of the reference manifest (name REFERENCE) or a benchmark."""
        return self.manifests / "validation" / f"{name}.json"

    # -- texts, frozen backbone, caches, model ----------------------------------------------

    @property
    def place_texts(self) -> Path:
        return self.artifacts / "texts" / "place_texts.csv"

    @property
    def backbone_dir(self) -> Path:
        """The frozen towers' weights and their record."""
        return self.artifacts / "backbone"

    @property
    def backbone_record(self) -> Path:
        """Which weights the frozen towers have (architecture, weights, digest)."""
        return self.backbone_dir / "backbone.json"

    @property
    def features_dir(self) -> Path:
        """The backbone feature cache, one folder per shard."""
        return self.artifacts / "features"

    @property
    def segmentation_dir(self) -> Path:
        """The segmentation cache (ADE20K label maps), one file per shard."""
        return self.artifacts / "segmentation"

    def imported(self, kind: str) -> Path:
        """What `geoloc import KIND` wrote (g3, geoclip): docs/imports.md."""
        return self.artifacts / "imports" / kind

    @property
    def model_dir(self) -> Path:
        return self.artifacts / "model"

    @property
    def model_weights(self) -> Path:
        return self.model_dir / "model.pt"

    @property
    def model_config(self) -> Path:
        return self.model_dir / "config.json"

    def checkpoints(self, name: str) -> Path:
        """A step's resumable work (alignment, backbone, segmentation): outside artifacts/, so
        DVC never versions half-made work."""
        return self.root / ".checkpoints" / name

    # -- reference embeddings and the index ------------------------------------------------

    @property
    def embeddings_dir(self) -> Path:
        return self.artifacts / "embeddings"

    def embedding_shard(self, shard_key: str) -> tuple[Path, Path, Path]:
        """(vectors .npy, ids .csv, record .json) of one embedding shard."""
        base = self.embeddings_dir / f"shard-{shard_key}"
        return base.with_suffix(".npy"), base.with_suffix(".csv"), base.with_suffix(".json")

    @property
    def index_dir(self) -> Path:
        return self.artifacts / "index"

    @property
    def index_file(self) -> Path:
        return self.index_dir / "reference.faiss"

    @property
    def index_meta(self) -> Path:
        return self.index_dir / "reference_meta.csv"

    @property
    def index_record(self) -> Path:
        """What the index holds (parts, variant, model), written beside it."""
        return self.index_dir / "index.json"

    # -- per benchmark: the inference chain's outputs --------------------------------------

    def candidates(self, benchmark: str) -> Path:
        return self.artifacts / "candidates" / f"{benchmark}.csv"

    def query_embeddings(self, benchmark: str) -> tuple[Path, Path]:
        """(GPS-aligned query embeddings .npy, their ids .csv in the same order)."""
        folder = self.artifacts / "candidates"
        return folder / f"{benchmark}.queries.npy", folder / f"{benchmark}.queries.csv"

    def reranked(self, benchmark: str) -> Path:
        return self.artifacts / "rerank" / f"{benchmark}.csv"

    def lmm_answers(self, benchmark: str, mode: str = "g3") -> Path:
        return self.artifacts / LMM_FOLDERS[mode] / f"{benchmark}.csv"

    def lmm_summary(self, benchmark: str, mode: str = "g3") -> Path:
        return self.artifacts / LMM_FOLDERS[mode] / f"{benchmark}.summary.json"

    def predictions(self, benchmark: str) -> Path:
        return self.artifacts / "predictions" / f"{benchmark}.csv"

    def radii(self, benchmark: str) -> Path:
        """Each decision's confidence radius at every level of the reliability curve."""
        return self.artifacts / "predictions" / f"{benchmark}.radii.csv"

    @property
    def confidence_calibration(self) -> Path:
        """The confidence model fitted on the calibration benchmark (confidence section)."""
        return self.artifacts / "confidence" / "calibration.json"

    # -- evaluation and reports ------------------------------------------------------------

    def metrics(self, benchmark: str) -> Path:
        return self.root / "metrics" / f"{benchmark}.json"

    def errors(self, benchmark: str) -> Path:
        return self.artifacts / "errors" / f"{benchmark}.csv"

    def baseline_metrics(self, benchmark: str) -> Path:
        return self.root / "metrics" / "baselines" / f"{benchmark}.json"

    def baseline_predictions(self, benchmark: str, method: str) -> Path:
        return self.artifacts / "baselines" / benchmark / f"{method}.csv"

    def baseline_failures(self, benchmark: str, method: str) -> Path:
        return self.artifacts / "baselines" / benchmark / f"{method}.failed.csv"

    @property
    def plots_data(self) -> Path:
        """The data behind the report's curves (tracked by DVC as plots)."""
        return self.root / "metrics" / "plots"

    def reliability_table(self, benchmark: str) -> Path:
        return self.plots_data / f"reliability_{benchmark}.csv"

    def cdf_table(self, benchmark: str) -> Path:
        return self.plots_data / f"cdf_{benchmark}.csv"

    def accuracy_table(self, benchmark: str) -> Path:
        return self.plots_data / f"accuracy_{benchmark}.csv"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def served_model_record(self) -> Path:
        """The served model last registered: its name, version and bundle."""
        return self.artifacts / "serving" / "served_model.json"

    @property
    def mlruns(self) -> Path:
        return self.root / "mlruns"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{(self.mlruns / 'mlflow.db').resolve()}"
