"""The `loader` params section: how many worker processes decode and preprocess images for the
steps that read pixels (backbone features, segmentation, predict on folders).

Only speed depends on it: batches come back in order and each is computed by the same
functions, so every output is byte-identical whatever `workers` is.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from geoloc_core.section_model import SectionModel, whole


@dataclass(frozen=True)
class LoaderOptions:
    """How batches are prepared: workers 0 = in the calling process (no worker processes);
    prefetch = batches each worker prepares ahead; pin_memory for fast copies to a GPU."""

    workers: int = 0
    prefetch: int = 2
    pin_memory: bool = False

    def __post_init__(self) -> None:
        if self.workers < 0 or self.prefetch < 1:
            raise ValueError(
                f"loader workers={self.workers} must be >= 0 and prefetch={self.prefetch} >= 1"
            )


class LoaderSettings(SectionModel):
    """Worker processes that decode images while the model runs (a torch DataLoader)."""

    SECTION = "loader"

    workers: whole(ge=0) = Field(
        0, description="decoding processes; 0: in the step's own process (full profile: 8)"
    )
    prefetch: whole(ge=1) = Field(2, description="batches each worker prepares ahead")

    def options(self, on_cuda: bool) -> LoaderOptions:
        """Pinned memory only when the batches go to a GPU (it costs a copy otherwise)."""
        return LoaderOptions(self.workers, self.prefetch, pin_memory=on_cuda)
