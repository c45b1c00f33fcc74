"""Where every step reads and writes, relative to the project root (one place to change it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProjectPaths:
    root: Path

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

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

    @property
    def model_dir(self) -> Path:
        return self.artifacts / "model"

    @property
    def model_weights(self) -> Path:
        return self.model_dir / "model.pt"

    @property
    def checkpoints(self) -> Path:
        return self.root / ".checkpoints" / "alignment"

    @property
    def embeddings_dir(self) -> Path:
        return self.artifacts / "embeddings"

    @property
    def index_dir(self) -> Path:
        return self.artifacts / "index"

    @property
    def index_file(self) -> Path:
        return self.index_dir / "reference.faiss"

    @property
    def index_meta(self) -> Path:
        return self.index_dir / "reference_meta.csv"

    def predictions(self, benchmark: str) -> Path:
        return self.artifacts / "predictions" / f"{benchmark}.csv"

    def metrics(self, benchmark: str) -> Path:
        return self.root / "metrics" / f"{benchmark}.json"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def mlruns(self) -> Path:
        return self.root / "mlruns"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{(self.mlruns / 'mlflow.db').resolve()}"
