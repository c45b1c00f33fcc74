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
    the pool: the top pool_size re-ranked candidates (G3's S) plus the LMM's answers."""

    method: str = "verify"
    pool_size: int = 20

    def __post_init__(self) -> None:
        require_choice("verification.method", self.method, METHODS)
        require_int("verification.pool_size", self.pool_size, 1)

    @classmethod
    def from_section(cls, m: Mapping[str, Any]) -> VerificationSettings:
        return cls(**strict_values(cls, m, "verification"))
