"""The precheck baseline: one reading of a structural metric before training, nothing later, and constraints kept
from the sampler (a plain Optuna study)."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from sysprune._attrs import HIDDEN_CONSTRAINTS, PRUNE_DETAIL
from sysprune.pruners._step_api import report, should_prune
from sysprune.pruners import PrecheckPruner, budget_constraints, build_pruner, record_constraints, validate_policy


def _trial(study, pre, later=(), *, budgets):
    """Report step -1 (``pre``) and then ``later`` steps, as the runner does; the step it was pruned at, or None."""
    trial = study.ask()
    stop = None
    for step, metrics in [(-1, pre), *enumerate(later)]:
        report(trial, step, None if step < 0 else 0.5, metrics)
        if should_prune(trial):
            stop = step
            break
    record_constraints(trial, budgets, hidden=True)
    study.tell(trial, state=TrialState.PRUNED) if stop is not None else study.tell(trial, 0.5)
    return study.trials[trial.number], stop


def test_prunes_before_training_on_one_reading_and_hides_the_constraint() -> None:
    budgets = {"n_params": 1000.0}
    study = optuna.create_study(direction="maximize", pruner=PrecheckPruner(budgets))
    big, stop = _trial(study, {"n_params": 5000.0}, budgets=budgets)
    assert stop == -1 and big.state == TrialState.PRUNED
    assert big.user_attrs[PRUNE_DETAIL]["infeasible"] and big.user_attrs[PRUNE_DETAIL]["step"] == -1
    assert big.constraints == {}  # what a sampler reads: nothing, as in a plain Optuna study
    assert budget_constraints(big) == {"n_params": 4000.0} == big.user_attrs[HIDDEN_CONSTRAINTS]
    small, stop = _trial(study, {"n_params": 500.0}, [{"n_params": 500.0}], budgets=budgets)
    assert stop is None and small.constraints == {} and budget_constraints(small) == {"n_params": -500.0}


def test_decides_once_before_training_and_only_on_structural_metrics() -> None:
    budgets = {"infer_ms": 1.0, "cpu_s": 1.0}
    study = optuna.create_study(direction="maximize", pruner=PrecheckPruner(budgets))
    # one noisy reading just over the budget prunes (no noise allowance: the baseline's weakness)
    assert _trial(study, {"infer_ms": 1.01}, budgets=budgets)[1] == -1
    # within at step -1: nothing later is checked, however far over budget
    t, stop = _trial(study, {"infer_ms": 0.5, "cpu_s": 0.1}, [{"infer_ms": 9.0, "cpu_s": 50.0}], budgets=budgets)
    assert stop is None and budget_constraints(t)["cpu_s"] > 0  # infeasible, known to the analyses only
    # no step -1 row (plain trial.report without the pre-training probe): never prunes
    assert _trial(study, {}, [{"infer_ms": 9.0}], budgets=budgets)[1] is None


def test_policies_plain_and_precheck() -> None:
    assert validate_policy("plain", {}, steps=3, budgets={}) == ("plain", {})
    with pytest.raises(ValueError, match="policy 'precheck' needs a \\[budgets\\] table"):
        validate_policy("precheck", {}, steps=3, budgets={})
    with pytest.raises(ValueError, match=r"^pruner\.k: unknown key; valid: \(none\)$"):
        validate_policy("precheck", {"k": 1}, steps=3, budgets={"n_params": 1.0})
    assert isinstance(build_pruner("plain", {}, budgets={}, steps=3), optuna.pruners.NopPruner)
    assert isinstance(build_pruner("precheck", {}, budgets={"n_params": 1.0}, steps=3), PrecheckPruner)
