from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

from sysprune._attrs import PRUNE_DETAIL, PRUNE_REASON
from sysprune.pruners._step_api import report, should_prune
from sysprune.pruners import ResourceBudgetPruner, ThresholdBudgetPruner
from sysprune.pruners import _steps
from tests._optuna import storage_of, trial_id

from ._helpers import cumulative, run_trial, series

DIRECTIONS = ["minimize", "maximize"]


@pytest.fixture(params=["memory", "sqlite"])
def storage(request, sqlite_url):
    return None if request.param == "memory" else sqlite_url


@pytest.mark.parametrize(
    "budgets, message",
    [
        ({}, "budgets: value {} is invalid; valid: a table whose keys are system metrics and values a finite "),
        ({"bogus": 1.0}, "budgets.bogus: unknown system metric; valid: wall_s, "),
        ({"wall_s": -1.0}, "budgets.wall_s: value -1.0 is invalid; valid: a finite number >= 0"),
        ({"wall_s": math.inf}, "budgets.wall_s: value inf is invalid; valid: a finite number >= 0"),
    ],
)
def test_threshold_pruner_rejects_budgets(budgets, message: str) -> None:
    with pytest.raises(ValueError) as e:
        ThresholdBudgetPruner(budgets)
    assert str(e.value).startswith(f"ThresholdBudgetPruner: {message}")


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_one_reading_over_budget_prunes_at_that_step(storage, direction: str) -> None:
    study = optuna.create_study(storage=storage, direction=direction, pruner=ThresholdBudgetPruner({"infer_ms": 2.0}))
    ok, pruned_at = run_trial(study, series(infer_ms=[2.0, 1.9, 2.0]), values=[0.5] * 3)
    assert pruned_at is None and ok.state == TrialState.COMPLETE  # equal is within
    # One noisy reading 1.1x over prunes at once (the budget policy would wait for a second one).
    trial, pruned_at = run_trial(study, series(infer_ms=[1.5, 2.2, 1.5]), values=[0.5] * 3)
    assert pruned_at == 1
    assert trial.user_attrs[PRUNE_REASON] == "threshold: infer_ms measured 2.2 ms > budget 2 ms at step 1"
    assert trial.user_attrs[PRUNE_DETAIL] == {
        "rule": "budget",
        "pruner": "ThresholdBudgetPruner",
        "metric": "infer_ms",
        "value": 2.2,
        "budget": 2.0,
        "step": 1,
        "predicted": False,
        "infeasible": True,
        "measured_step": 1,
    }
    assert trial.constraints == {"budget:infer_ms": pytest.approx(0.2)}
    budget_pruner = ResourceBudgetPruner({"infer_ms": 2.0}, max_steps=3)
    _, pruned_at = run_trial(optuna.create_study(pruner=budget_pruner), series(infer_ms=[1.5, 2.2, 1.5]))
    assert pruned_at is None


def test_nothing_is_predicted() -> None:
    # 2 s a step against 10 s: the budget policy prunes at step 2 on its forecast, the threshold at step 5.
    walls = cumulative([2.0] * 10)
    threshold = optuna.create_study(pruner=ThresholdBudgetPruner({"wall_s": 10.0}))
    trial, pruned_at = run_trial(threshold, series(wall_s=walls))
    assert pruned_at == 5
    assert trial.constraints == {"budget:wall_s": 2.0}
    budget = optuna.create_study(pruner=ResourceBudgetPruner({"wall_s": 10.0}, max_steps=10))
    assert run_trial(budget, series(wall_s=walls))[1] == 2


def test_pre_training_probe_is_ignored() -> None:
    # A step -1 row (contract 1) over budget does not prune; the same value at step 0 does.
    study = optuna.create_study(pruner=ThresholdBudgetPruner({"n_params": 100.0, "infer_ms": 1.0}))
    trial = study.ask()
    _steps.remember(storage_of(study), trial_id(trial), trial.datetime_start, -1, {"n_params": 500.0, "infer_ms": 9.0})
    assert not should_prune(trial)
    report(trial, 0, 0.3, {"n_params": 500.0, "infer_ms": 0.5})
    assert should_prune(trial)
    study.tell(trial, state=TrialState.PRUNED)
    frozen = study.trials[0]
    assert frozen.user_attrs[PRUNE_DETAIL]["metric"] == "n_params"
    assert frozen.user_attrs[PRUNE_DETAIL]["measured_step"] == 0
    assert frozen.constraints == {"budget:n_params": 400.0}  # infer_ms at step 0 is within; step -1 not read


def test_the_worst_breach_names_the_reason_and_every_breach_is_a_constraint() -> None:
    study = optuna.create_study(pruner=ThresholdBudgetPruner({"model_bytes": 1000.0, "peak_rss_mb": 100.0}))
    trial, pruned_at = run_trial(study, series(model_bytes=[1500.0], peak_rss_mb=[400.0]))
    assert pruned_at == 0
    assert trial.user_attrs[PRUNE_DETAIL]["metric"] == "peak_rss_mb"  # 4x beats 1.5x
    assert trial.constraints == {"budget:model_bytes": 500.0, "budget:peak_rss_mb": 300.0}


def test_multi_objective_study(storage) -> None:
    study = optuna.create_study(
        storage=storage, directions=["maximize", "minimize"], pruner=ThresholdBudgetPruner({"model_bytes": 1000.0})
    )
    trial = study.ask()
    report(trial, 0, None, {"model_bytes": 999.0})
    assert not should_prune(trial)
    report(trial, 1, None, {"model_bytes": 1001.0})
    assert should_prune(trial)
    study.tell(trial, state=TrialState.PRUNED)
    assert study.trials[0].constraints == {"budget:model_bytes": 1.0}
