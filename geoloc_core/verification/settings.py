"""Typed `verification` params section."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from geoloc_core.section_fields import require_choice, require_int, strict_values

METHODS = ("top1", "verify")


@dataclass(frozen=True)
class VerificationSettings:
    """method top1 takes the first re-ranked candidate (the ablation without verification);
    verify takes the argmax of cos(image GPS-aligned embedding, candidate GPS embedding) over
    the pool: the top pool_size re-ranked candidates (G3's S), the LMM's answers, and the
    gallery_top points of an optional GPS gallery closest to the image in the GPS space."""

    method: str = "verify"
    pool_size: int = 20
    gallery: str | None = None  # CSV of lat, lon (e.g. GeoCLIP's 100K GPS gallery), or null
    gallery_top: int = 0  # gallery points closest to the image's GPS embedding joining the pool

    def __post_init__(self) -> None:
        require_choice("verification.method", self.method, METHODS)
        require_int("verification.pool_size", self.pool_size, 1)
        require_int("verification.gallery_top", self.gallery_top, 0)
        if self.gallery is not None and (not isinstance(self.gallery, str) or not self.gallery):
            raise ValueError(
                f"verification.gallery={self.gallery!r} must be null or a CSV path"
            )
        if bool(self.gallery) != bool(self.gallery_top):
            raise ValueError(
                f"verification.gallery={self.gallery!r} and verification.gallery_top="
                f"{self.gallery_top}: set both (a CSV and how many of its points join the "
                "pool) or neither"
            )

    @classmethod
    def from_section(cls, m: Mapping[str, Any]) -> VerificationSettings:
        return cls(**strict_values(cls, m, "verification"))
