"""What a study file holds, as frozen dataclasses (:class:`StudySpec` and its tables)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sysprune.models._space import Param


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    subsample: int | None = None  # rows drawn (stratified) before the split; None = all
    val_fraction: float = 0.2
    test_fraction: float = 0.2


@dataclass(frozen=True)
class ObjectiveSpec:
    metrics: tuple[str, ...]
    directions: tuple[str, ...]

    @property
    def is_multi(self) -> bool:
        return len(self.metrics) > 1


@dataclass(frozen=True)
class SamplerSpec:
    name: str = "tpe"
    n_startup_trials: int = 10


@dataclass(frozen=True)
class PrunerSpec:
    policy: str = "none"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrialSpec:
    """How each trial process runs and is measured."""

    threads: int = 1  # torch intra-op + BLAS threads, pinned so metrics repeat
    infer_batch_size: int = 256
    infer_repeats: int = 5
    max_rss_mb: float | None = None  # hard cap: the trial process is killed above it (pruned, infeasible)
    max_wall_s: float | None = None  # hard cap on one trial's wall time


@dataclass(frozen=True)
class StudySpec:
    name: str
    model: str
    dataset: DatasetSpec
    objective: ObjectiveSpec
    steps: int
    n_trials: int
    seed: int
    sampler: SamplerSpec
    pruner: PrunerSpec
    budgets: dict[str, float]
    search_space: dict[str, Param]
    trial: TrialSpec
    description: str = ""
    path: str | None = None
    plugins: tuple[str, ...] = ()  # modules imported first (they register models, datasets, metrics)
    #: ``[study] max_compute_s``: stop the search once its trials spent this many CPU seconds (None: no limit).
    max_compute_s: float | None = None
