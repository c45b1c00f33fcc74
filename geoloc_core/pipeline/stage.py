"""The vocabulary of the registry: a step, what it reads, what it writes, how it is cut."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from geoloc_core.paths import ProjectPaths
from geoloc_core.pipeline.outcome import CheckOutcome, StepContext, StepOutcome

# How a step's work is cut: one run per benchmark, per shard of image ids (the features' or the
# segmentation's shards), or one run for everything.
Partitioning = Literal["benchmark", "feature_shard", "segmentation_shard"] | None


@dataclass(frozen=True)
class Upstream:
    """A step this one reads. every_partition: it reads all of that step's partitions (else the
    same partition where both are cut alike, the whole step otherwise); partition: it reads that
    one partition only (the validation benchmark's results a threshold is calibrated on)."""

    step: str
    every_partition: bool = False
    partition: str | None = None


@dataclass(frozen=True)
class Output:
    """A file or folder the step writes, relative to the project root, as DVC tracks it.
    metric: a DVC metrics file ({benchmark} is filled in per benchmark); cache: DVC keeps a copy."""

    path: str
    metric: bool = False
    cache: bool = True


@dataclass(frozen=True)
class Check:
    """A check on what the step wrote. evaluate ('module:function', taking the project's paths
    and the partition and returning a CheckOutcome) runs on its own after the step; without it
    the step's outcome carries the verdict under this name. blocking: a failure stops everything
    downstream."""

    name: str
    description: str
    blocking: bool = False
    evaluate: str | None = None

    def evaluator(self) -> Callable[[ProjectPaths, str | None], CheckOutcome]:
        if self.evaluate is None:
            raise ValueError(f"check {self.name} is evaluated by its step")
        return resolve(self.evaluate)


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline, declared once. Its asset, code version and DVC stage derive
    from this: name (the asset), group (the DVC stage and the UI group), sections (the params
    it reads: its Config and its code version), run ('module:function' in geoloc_core), the
    steps it reads, how it is cut, what it writes (provides: the finer paths a downstream DVC
    stage depends on, when they differ from outputs), whether it takes a GPU slot and how many
    GPUs a run of it uses (a bool or a count, or a function of the params), its checks, a line
    for the UI, and the params sections it adds to the settings tree: (section name,
    'module:Model'), the model a SectionModel, usually in the step's own module."""

    name: str
    group: str
    sections: tuple[str, ...]
    run: str
    description: str
    tracks: tuple[str, ...] = ()
    upstream: tuple[Upstream, ...] = ()
    partitioning: Partitioning = None
    outputs: tuple[Output, ...] = ()
    provides: tuple[str, ...] = ()
    gpu: bool | int | Callable[[Mapping[str, Any]], bool | int] = False
    checks: tuple[Check, ...] = ()
    new_sections: tuple[tuple[str, str], ...] = ()

    @property
    def hashed_sections(self) -> tuple[str, ...]:
        """The sections whose change marks the step stale."""
        return (*self.sections, *self.tracks)

    @property
    def module(self) -> str:
        return self.run.split(":")[0]

    def step(self) -> Callable[[StepContext], StepOutcome]:
        return resolve(self.run)

    def gpus(self, params: Mapping[str, Any]) -> int:
        """How many GPUs one run of the step uses (True: one; training under torchrun: as many
        as train.devices), what a cluster's pod for it asks for."""
        wanted = self.gpu(params) if callable(self.gpu) else self.gpu
        return int(wanted)

    @property
    def dependency_paths(self) -> tuple[str, ...]:
        """What a downstream DVC stage lists as its dependency on this step."""
        return self.provides or tuple(o.path for o in self.outputs if not o.metric)


def resolve(reference: str) -> Callable[..., Any]:
    """'package.module:function' -> the function (imported only when a step runs)."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)
