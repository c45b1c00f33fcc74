"""What preflight found: problems (each with its fix in one line), notes, and per stage the
items, the disk its outputs need and the expected time, with where each number comes from."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Problem:
    """Something that stops the run from finishing; fix: one line that resolves it."""

    kind: str  # weights | data | gpu | secret | disk
    what: str
    fix: str


@dataclass(frozen=True)
class StageEstimate:
    stage: str  # the DVC stage (= the Dagster group)
    items: int
    bytes_per_item: float
    disk_bytes: int  # what its outputs take
    seconds: float | None  # here, on this machine's devices (None: nothing to project from)
    gpu_seconds: float | None  # on one GPU, where the settings use one (None: not projected)
    basis: str  # where the bytes per item and the rates come from


@dataclass
class PreflightReport:
    profile: str
    device: str  # what the settings run on here
    free_bytes: int
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stages: list[StageEstimate] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.problems

    @property
    def disk_bytes(self) -> int:
        return sum(s.disk_bytes for s in self.stages)

    def as_json(self) -> str:
        return json.dumps({**asdict(self), "ready": self.ready}, indent=2)

    def as_text(self) -> str:
        lines = [f"profile {self.profile}, running on {self.device}"]
        lines += [
            "",
            "| stage | items | bytes/item | disk | time here | time on 1 GPU | from |",
            "|---|---|---|---|---|---|---|",
        ]
        for s in self.stages:
            lines.append(
                f"| {s.stage} | {s.items:,} | {s.bytes_per_item:,.0f} | "
                f"{human_bytes(s.disk_bytes)} | {human_seconds(s.seconds)} | "
                f"{human_seconds(s.gpu_seconds)} | {s.basis} |"
            )
        lines.append(
            f"| total | | | {human_bytes(self.disk_bytes)} (free {human_bytes(self.free_bytes)}) "
            f"| {total_seconds([s.seconds for s in self.stages])} "
            f"| {total_seconds([s.gpu_seconds for s in self.stages])} | |"
        )
        lines += [f"note: {note}" for note in self.notes]
        if self.ready:
            lines.append("ready: weights, data, devices and disk are all there")
        else:
            lines.append(f"NOT READY: {len(self.problems)} problem(s), each with its fix")
            lines += [f"  [{p.kind}] {p.what}\n      fix: {p.fix}" for p in self.problems]
        return "\n".join(lines)


def total_seconds(values: list[float | None]) -> str:
    """The sum, 'at least' the sum when some stage has no estimate, '—' when none has one."""
    known = [v for v in values if v is not None]
    if not known:
        return "—"
    prefix = "at least " if len(known) < len(values) else ""
    return prefix + human_seconds(sum(known))


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError


def human_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
