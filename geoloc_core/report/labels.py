"""Which settings produced each of our rows: variant x re-rank x verification x LMM.

A number without the configuration that produced it cannot be compared, so every row of our
run carries these four, read from the params sections the report receives. A stage that did
not act on a row (the retrieval top-1 was not re-ranked) shows a dash instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NOT_APPLIED = "—"
SETTING_COLUMNS: tuple[str, ...] = ("variant", "re-rank", "verification", "LMM")
LABEL_SECTIONS: tuple[str, ...] = ("model", "embeddings", "rerank", "verification", "lmm")


@dataclass(frozen=True)
class RunSetting:
    """The four settings as short human-readable texts."""

    variant: str
    rerank: str
    verification: str
    lmm: str
    lmm_mode: str | None  # None when no LMM runs (provider none)

    def cells(self, stage: str) -> dict[str, str]:
        """The setting columns for one stage; later stages' settings are dashes."""
        values = (self.variant, self.rerank, self.verification, self.lmm)
        cells = dict(zip(SETTING_COLUMNS, values, strict=True))
        if stage == "retrieval":
            cells.update({"re-rank": NOT_APPLIED, "verification": NOT_APPLIED, "LMM": NOT_APPLIED})
        elif stage == "rerank":
            cells.update({"verification": NOT_APPLIED, "LMM": NOT_APPLIED})
        return cells


def _get(settings: Mapping[str, Mapping[str, Any]], section: str, key: str) -> Any:
    return settings.get(section, {}).get(key)


def run_setting(settings: Mapping[str, Mapping[str, Any]]) -> RunSetting:
    """Describe the run from its params sections (model, embeddings, rerank, verification, lmm)."""
    variant = str(_get(settings, "model", "variant") or "?")
    parts = _get(settings, "embeddings", "parts")
    if parts not in (None, "auto"):
        variant += " [" + "+".join(str(p) for p in parts) + "]"
    method = _get(settings, "rerank", "method")
    if method == "none":
        rerank = "none"
    elif method is None:
        rerank = "?"
    elif method == "hdbscan":
        size = _get(settings, "rerank", "min_cluster_size")
        rerank = f"hdbscan, cluster {size}, min {_get(settings, 'rerank', 'min_samples')}"
    else:
        eps = _get(settings, "rerank", "eps_km")
        rerank = f"{method} eps {eps:g} km, min {_get(settings, 'rerank', 'min_samples')}"
    check = _get(settings, "verification", "method")
    if check == "verify":
        verification = f"verify, pool {_get(settings, 'verification', 'pool_size')}"
        gallery_top = _get(settings, "verification", "gallery_top") or 0
        if _get(settings, "verification", "gallery") and gallery_top > 0:
            verification += f" + {gallery_top} gallery points"
    elif check == "top1":
        verification = "off (top-1)"
    else:
        verification = str(check or "?")
    provider = _get(settings, "lmm", "provider")
    mode = _get(settings, "lmm", "mode")
    if provider in (None, "none"):
        lmm, lmm_mode = ("none" if provider else "?"), None
    else:
        lmm, lmm_mode = f"{mode} via {provider} ({_get(settings, 'lmm', 'model')})", str(mode)
    return RunSetting(variant, rerank, verification, lmm, lmm_mode)


def stage_label(stage: str, setting: RunSetting) -> str:
    """Row label of a stage of our pipeline, the decision named after what decided it."""
    if stage == "retrieval":
        return "retrieval top-1"
    if stage == "rerank":
        return "+ re-rank"
    if setting.lmm_mode == "dualgeo":
        return "+ LMM reasoning (decision)"
    if setting.lmm_mode == "g3":
        return "+ LMM candidates + verification (decision)"
    if setting.verification.startswith("off"):
        return "re-ranked top-1 (decision, no verification)"
    return "+ verification (decision)"
