"""LMM: every prompt job's lmm.n answers through the runner (cache, budget, retries), parsed.

The jobs come from geoloc_core/lmm/jobs.py (G3's geo-diversification or DualGeo's reasoning);
what parses is kept in answer order, what does not is counted by reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from geoloc_core.lmm.answers import DropCounts, ParsedAnswer, parse_answer
from geoloc_core.lmm.backend import Backend
from geoloc_core.lmm.cache import JsonRecordCache
from geoloc_core.lmm.jobs import Tag
from geoloc_core.lmm.runner import JobResult, PromptJob, SampleRunner
from geoloc_core.lmm.settings import LmmSettings

# One parsed answer: (query position, source position), sample, query_id, source, lat, lon.
AnswerRow = tuple[tuple[int, int], int, str, str, float, float]


def _as_written(value: float) -> float:
    """A coordinate as the LMM stage's answers file stores it (6 decimals)."""
    return float(f"{value:.6f}")


@dataclass
class LmmAnswers:
    """What one run of prompts gave: the answers that parse, sorted by (query position, source
    position, sample), what was dropped, and the runner's counts."""

    rows: list[AnswerRow]
    drops: DropCounts
    by_source: Counter[str]
    stats: dict[str, Any]
    estimated_cost: float

    def columns(self) -> tuple[list[str], list[str], list[int], np.ndarray]:
        """Every answer's query id, source, sample and (lat, lon), in order, the coordinates
        as the answers file stores them: in memory as from the file."""
        latlon = np.array(
            [[_as_written(r[4]), _as_written(r[5])] for r in self.rows], np.float64
        ).reshape(-1, 2)
        return (
            [r[2] for r in self.rows],
            [r[3] for r in self.rows],
            [r[1] for r in self.rows],
            latlon,
        )


def ask_lmm(
    settings: LmmSettings,
    backend: Backend,
    cache: JsonRecordCache | None,
    jobs: Sequence[PromptJob],
    progress: bool,
    desc: str,
) -> LmmAnswers:
    """Every job's lmm.n answers through the runner (cache, budget, retries), parsed."""
    runner = SampleRunner(settings, backend, cache)
    rows: list[AnswerRow] = []
    drops = DropCounts()
    by_source: Counter[str] = Counter()
    with tqdm(total=len(jobs), desc=desc, unit="prompt", disable=not progress) as bar:
        for result in runner.run(jobs):
            _collect(result, rows, drops, by_source)
            bar.update(1)
    rows.sort(key=lambda row: (row[0], row[1]))
    return LmmAnswers(rows, drops, by_source, runner.stats.as_dict(), runner.estimated_cost())


def _collect(
    result: JobResult,
    rows: list[AnswerRow],
    drops: DropCounts,
    by_source: Counter[str],
) -> None:
    tag: Tag = result.tag
    for sample, text in enumerate(result.texts):
        if text is None:
            continue  # never answered: counted as samples_missing, not as a drop
        parsed = parse_answer(text)
        if isinstance(parsed, ParsedAnswer):
            rows.append((tag.order, sample, tag.query_id, tag.source, parsed.lat, parsed.lon))
            by_source[tag.source] += 1
        else:
            drops.add(parsed)
