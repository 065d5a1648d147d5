"""The plan of ``make results`` (:data:`FULL`, :data:`QUICK`): which study is recorded for RQ1, which is compared
live for RQ2 under which policies and seeds, and what one study of it yields (:class:`StudyOutcome`); the RQ2
budget set from a recording (:func:`derive_budget`) and the plan's time estimate (:func:`estimate_minutes`).

The plan is data: to change what the chapter measures, edit :data:`FULL` (the chapter states every item, and why its
policies were chosen). :mod:`._results` runs it and :mod:`._chapter` writes the chapter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from sysprune.pruners import reference_groups
from sysprune.spec import StudySpec

#: The seed every recording adds to its study file's seed: recordings draw configurations of their own, never the
#: first trials of a live comparison (whose seeds start at the file's seed).
RECORD_SEED_OFFSET = 100


@dataclass(frozen=True)
class Item:
    """One study of the plan.

    ``record_trials`` random-sampler trials under policy ``none`` are recorded (RQ1 and replay) unless ``recording``
    names another item whose recording this one shares (same model, data, space and steps; only the budget differs:
    then RQ1 reports that recording once). An RQ2 item (``budget_metric`` set) gets a budget from the recording —
    the ``feasible_share`` quantile of the metric — and, with ``seeds`` > 0, a live comparison: ``policies`` with
    TPE, ``compare_trials`` trials, seeds file seed .. + seeds - 1. ``steps``/``subsample`` override the study
    file's (to fit the plan's time; stated in the chapter). ``why``: why these policies, for the chapter.
    """

    study: str  # studies/<study>.toml
    record_trials: int = 0
    orders: int = 20
    budget_metric: str | None = None
    feasible_share: float = 0.5
    compare_trials: int = 0
    seeds: int = 0
    policies: tuple[str, ...] = ()  # () = every registered policy
    recording: str | None = None  # another item's study whose recording this one replays
    steps: int | None = None
    subsample: int | None = None
    why: str = ""

    @property
    def records(self) -> bool:
        return self.recording is None

    @property
    def live(self) -> bool:
        return self.compare_trials > 0 and self.seeds > 0


#: RQ2's baselines, what each answers: `none` is the reference of compute-to-target; `plain`, what a plain Optuna
#: user runs; `threshold`, a Ray-Tune-style stopper on one measured value; `budget` and `combined`, sysprune's.
CORE = ("none", "budget", "threshold", "combined", "plain")
#: `precheck` (a hand-written check of structural metrics before training) only where the budget is structural:
#: on time and memory budgets it prunes nothing, so "vs precheck" would repeat "vs plain".
STRUCTURAL = (*CORE, "precheck")
#: Optuna's built-in pruners (the policy registry's ``builtin`` reference group), for the goal against the best
#: built-in: on one digits study at full seeds.
BUILTIN = (*STRUCTURAL, *reference_groups().get("builtin", ()))

#: ``make results``: estimated ~100 min on a quiet 2-core machine (:func:`estimate_minutes`, printed by
#: ``make results RESULTS_ARGS=--estimate``). The three MLP-on-digits budget kinds share one recording (RQ1 reports
#: it once); every model x dataset pair of the grid is recorded once, with 50-60 random trials.
FULL: tuple[Item, ...] = (
    Item(
        "rq2_size_mlp_digits", 60, 20, "model_bytes", 0.5, 20, 10, BUILTIN,
        why="every baseline, and Optuna's built-in pruners for the 2x goal against them",
    ),
    Item("rq2_time_mlp_digits", 0, 20, "cpu_s", 0.5, 20, 10, CORE, recording="rq2_size_mlp_digits",
         why="a cumulative budget: precheck cannot see it"),
    Item("rq2_memory_mlp_digits", 0, 20, "peak_rss_delta_mb", 0.5, 20, 10, CORE, recording="rq2_size_mlp_digits",
         why="a level budget: precheck cannot see it"),
    Item("rq2_latency_cnn_digits", 60, 20, "infer_ms", 0.5, 16, 10, STRUCTURAL,
         why="a structural budget measured with noise"),
    Item("rq2_time_mlp_mnist", 50, 20, "cpu_s", 0.5, 12, 5, ("none", "budget", "threshold", "combined"),
         why="MNIST-sized trials: training, not bookkeeping, is the cost"),
    Item("rq2_time_mlp_fashion", 50, 20, "cpu_s", 0.5, 12, 3, ("none", "budget", "threshold", "combined"),
         why="FashionMNIST-sized trials"),
    Item("rq2_memory_mlp_letter", 50, 20, "peak_rss_delta_mb", 0.5, 16, 5, CORE, why="a PMLB set"),
    Item("cnn_mnist", 50, 20, steps=3, subsample=5000),
    Item("cnn_fashion", 50, 20, steps=3, subsample=5000),
    Item("sgd_letter", 50, 20, steps=5),
    Item("sgd_adult", 50, 20, steps=5),
    Item("sgd_connect_4", 50, 20, steps=5),
)  # fmt: skip
#: ``RESULTS_QUICK=1``: the pipeline end to end on digits in a few minutes (3 steps, 2 seeds), into another folder.
QUICK: tuple[Item, ...] = (
    Item("rq2_size_mlp_digits", 10, 3, "model_bytes", 0.5, 6, 2, ("none", "budget", "threshold", "plain"),
         why="the pipeline's check"),
    Item("rq2_time_mlp_digits", 0, 3, "cpu_s", 0.5, 6, 2, ("none", "budget", "threshold", "plain"),
         recording="rq2_size_mlp_digits", why="a second study for the analysis across studies"),
)  # fmt: skip
STEPS_QUICK = 3  # QUICK also cuts every study to this many steps
#: Where each plan writes: the full plan the committed chapter, the quick one a folder of its own (never over it).
OUT_FULL, OUT_QUICK = Path("results"), Path("results/quick")

#: CPU seconds per training step of a trial run to the end, by model and dataset, measured here (2026-12-07, 4 random
#: trials per study under policy none at the file's subsample, load 5-8): a quiet machine's wall is about the same
#: (one thread per trial). :func:`estimate_minutes` reads it; a pair not listed counts 1 s per step.
STEP_CPU_S: dict[str, float] = {
    "torch_mlp/digits": 0.043,
    "torch_cnn/digits": 0.094,
    "torch_mlp/pmlb:letter": 0.17,
    "torch_mlp/mnist": 0.32,
    "torch_mlp/fashion_mnist": 0.36,
    "torch_cnn/mnist": 2.6,  # at 5,000 rows: the full plan's 50-trial recording took 6.8 min (2026-12-07)
    "torch_cnn/fashion_mnist": 2.3,  # 6.0 min
    "sklearn_sgd/pmlb:adult": 0.31,
    "sklearn_sgd/pmlb:letter": 1.05,
    "sklearn_sgd/pmlb:connect_4": 1.0,
}
#: Per trial besides its steps (process start, probes, the worker's ask/tell and writes), CPU s.
TRIAL_OVERHEAD_S = 0.15


def apply(item: Item, spec: StudySpec, quick: bool = False) -> StudySpec:
    """The study file's spec as the plan runs it: the item's steps and subsample, QUICK's steps."""
    out = spec
    if item.steps is not None:
        out = replace(out, steps=item.steps)
    if item.subsample is not None:
        out = replace(out, dataset=replace(out.dataset, subsample=item.subsample))
    if quick:
        out = replace(out, steps=min(out.steps, STEPS_QUICK))
    return out


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


def estimate_minutes(item: Item, spec: StudySpec, n_policies: int) -> float:
    """The item's minutes on a quiet machine if every trial ran to the end (pruning only shortens it): its
    recording plus ``n_policies`` x seeds x trials of the live comparison and one retraining per run for the test
    score, each trial ``spec.steps`` x :data:`STEP_CPU_S` + :data:`TRIAL_OVERHEAD_S`."""
    per_step = STEP_CPU_S.get(f"{spec.model}/{spec.dataset.name}", 1.0)
    trials = item.record_trials + n_policies * item.seeds * (item.compare_trials + 1)
    return trials * (spec.steps * per_step + TRIAL_OVERHEAD_S) / 60


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
    seconds: float = 0.0  # what the study took, summed over the invocations of make results (it resumes)
