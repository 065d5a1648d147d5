"""The sampler learns where the budget breaks: budget-pruned configurations steer sysprune's samplers away.

Fast and deterministic: ask/tell studies with a synthetic objective and a synthetic size metric (``n_params`` of an
MLP on 64 inputs and 10 classes, a function of ``n_layers`` and ``width``), no trial processes. The budget makes
about half of the space infeasible (a random sampler: 93 of the first 20 and 102 of the last 20 trials over budget
over 10 seeds). Each trial reports its size, asks the budget pruner (a size over budget is pruned, infeasible), and
otherwise completes — the runner's step loop. The samplers are the ones :func:`sysprune.study._open.make_sampler`
builds from a study file's ``[sampler]`` (default values of :class:`sysprune.spec.SamplerSpec`).
"""

from __future__ import annotations

import math
import warnings

import optuna
import pytest
from optuna.trial import TrialState

from sysprune.pruners._step_api import report, should_prune
from sysprune.study._open import make_sampler
from sysprune.spec import SamplerSpec
from sysprune.pruners import ResourceBudgetPruner, record_constraints

BUDGETS = {"n_params": 20_000.0}
N_TRIALS = 40
SEEDS = range(5)


class _Spec:
    """What make_sampler reads of a StudySpec."""

    def __init__(self, sampler: SamplerSpec) -> None:
        self.sampler = sampler


def n_params(p: dict) -> float:
    w, n = p["width"], p["n_layers"]
    return float(64 * w + (n - 1) * w * w + 10 * w)


def over_budget_per_trial(sampler: optuna.samplers.BaseSampler, directions: list[str]) -> list[bool]:
    study = optuna.create_study(
        directions=directions, sampler=sampler, pruner=ResourceBudgetPruner(BUDGETS, max_steps=1)
    )
    over = []
    for _ in range(N_TRIALS):
        trial = study.ask()
        p = {
            "n_layers": trial.suggest_int("n_layers", 1, 3),
            "width": trial.suggest_int("width", 16, 1024, log=True),
            "lr": trial.suggest_float("lr", 1e-4, 3e-2, log=True),
            "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128, 256]),
        }
        size = n_params(p)
        over.append(size > BUDGETS["n_params"])
        # Accuracy grows with the model (so the best configurations sit near the budget); cost with depth.
        acc = 1 - 0.3 / math.sqrt(p["width"]) - 0.02 * (3 - p["n_layers"]) - 0.05 * abs(math.log10(p["lr"]) + 2.5)
        cost = 10.0 / p["batch_size"] * p["n_layers"]
        report(trial, 0, None if len(directions) > 1 else acc, {"n_params": size})
        if should_prune(trial):
            record_constraints(trial, BUDGETS)
            study.tell(trial, state=TrialState.PRUNED)
            continue
        record_constraints(trial, BUDGETS)
        study.tell(trial, [acc, cost] if len(directions) > 1 else acc)
    assert sum(t.state == TrialState.PRUNED for t in study.trials) == sum(over)  # every size breach was pruned
    return over


@pytest.mark.parametrize(
    "sampler_spec, directions",
    [
        (SamplerSpec(), ["maximize", "minimize"]),  # sysprune's sampler for multi-objective studies: TPE
        (SamplerSpec("nsgaii"), ["maximize", "minimize"]),  # NSGA-II as sysprune configures it
        (SamplerSpec(), ["maximize"]),  # single-objective TPE
    ],
    ids=["tpe-multi", "nsgaii-multi", "tpe-single"],
)
def test_fewer_over_budget_trials_in_the_last_20_than_the_first_20(sampler_spec, directions) -> None:
    first = last = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for seed in SEEDS:
            over = over_budget_per_trial(make_sampler(_Spec(sampler_spec), seed), directions)
            first += sum(over[:20])
            last += sum(over[20:])
    assert last < first, (first, last)
    assert last <= 0.8 * first, (first, last)  # a clear drop, not a tie broken by one trial
