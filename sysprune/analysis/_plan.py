"""The plan of ``make results`` (:data:`FULL`, :data:`QUICK`), what one study of it yields (:class:`StudyOutcome`),
and the RQ2 budget set from a recording (:func:`derive_budget`); :mod:`._results` runs it and writes the chapter."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sysprune.spec import StudySpec


@dataclass(frozen=True)
class Item:
    study: str  # studies/<study>.toml
    record_trials: int
    orders: int
    budget_metric: str | None = None  # RQ2: the budget set from the recording (None: RQ1 only, file's budgets)
    feasible_share: float = 0.5  # the share of the recorded trials under the derived budget
    compare_trials: int = 0  # 0: no live comparison
    seeds: int = 0


#: Measured ~29 min on this 2-core VM (2026-11-29, with the plain and precheck baselines; ~27 min without) when nothing else runs (from the measured ~0.8 s per 8-epoch digits MLP
#: trial, ~2 s per digits CNN trial; the file records the real time): live TPE comparisons at 5 seeds on three
#: budgets of different kinds (size, cumulative training time, memory), 3 seeds on latency (the CNN is slower);
#: random-sampler recordings for RQ1 and replay, including four studies of the research grid.
FULL: tuple[Item, ...] = (
    Item("rq2_size_mlp_digits", 40, 20, "model_bytes", 0.5, compare_trials=20, seeds=5),
    Item("rq2_time_mlp_digits", 40, 20, "cpu_s", 0.5, compare_trials=20, seeds=5),
    Item("rq2_memory_mlp_digits", 40, 20, "peak_rss_delta_mb", 0.5, compare_trials=20, seeds=5),
    Item("rq2_latency_cnn_digits", 30, 20, "infer_ms", 0.5, compare_trials=16, seeds=3),
    Item("cnn_digits", 30, 20),
    Item("sgd_letter", 30, 20),
    Item("mlp_letter", 20, 20),
    Item("mlp_mnist", 12, 20),
)
#: A few minutes: the pipeline end to end on digits (2 seeds, a few trials).
QUICK: tuple[Item, ...] = (
    Item("rq2_size_mlp_digits", 10, 3, "model_bytes", 0.5, compare_trials=6, seeds=2),
    Item("cnn_digits", 8, 3),
)
STEPS_QUICK = 3  # QUICK also cuts every study to this many steps


def record_name(spec: StudySpec) -> str:
    return f"{spec.name}.record"


def derive_budget(values: list[float], share: float) -> float:
    """The ``share`` quantile of ``values`` (the smallest value with at least ``share`` of them at or below it), to
    3 significant digits, rounded *up* so the trial at the quantile stays within the budget."""
    if not values:
        raise ValueError("no recorded values to set a budget from")
    v = float(np.quantile(values, share, method="inverted_cdf"))
    if v <= 0:
        return v
    scale = 10 ** (math.floor(math.log10(v)) - 2)
    return round(math.ceil(v / scale - 1e-9) * scale, 12)


@dataclass
class StudyOutcome:
    item: Item
    spec: StudySpec
    budgets: dict[str, float]
    infeasible_share: float | None
    sizes: dict[str, int]
    record_s: float
    replay: Any = None
    report: Any = None
    compare: Any = None
    files: list[Path] | None = None
    seconds: float = 0.0
