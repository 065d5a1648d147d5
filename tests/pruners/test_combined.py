from __future__ import annotations

import optuna
import pytest
from optuna.trial import create_trial

from sysprune._attrs import PRUNE_DETAIL, PRUNE_REASON
from sysprune.pruners._step_api import report, should_prune
from sysprune.pruners import CombinedPruner, CurvePruner, ResourceBudgetPruner

from ._helpers import run_trial, series

STEPS = 10


def budget() -> ResourceBudgetPruner:
    return ResourceBudgetPruner({"model_bytes": 1000.0}, max_steps=STEPS)


def curve() -> CurvePruner:
    return CurvePruner(max_steps=STEPS, study_gains=False, n_warmup_steps=3)


def seeded(pruner: optuna.pruners.BasePruner, best: float = 0.95) -> optuna.Study:
    study = optuna.create_study(direction="maximize", pruner=pruner)
    study.add_trial(create_trial(value=best, intermediate_values={s: best for s in range(STEPS)}))
    return study


PLATEAU = [0.5, 0.58] + [0.6] * (STEPS - 2)


def test_combined_pruner_rejects_arguments() -> None:
    with pytest.raises(ValueError) as e:
        CombinedPruner()
    assert str(e.value) == (
        "CombinedPruner: pruners: value () is invalid; valid: a non-empty list of items, each an "
        "optuna.pruners.BasePruner"
    )
    with pytest.raises(ValueError) as e:
        CombinedPruner(budget(), "median")  # type: ignore[arg-type]
    assert str(e.value) == (
        "CombinedPruner: pruners[1]: value of type str is invalid; valid: an optuna.pruners.BasePruner"
    )


def test_budget_member_prunes_and_is_named() -> None:
    study = seeded(CombinedPruner(budget(), curve()))
    trial, pruned_at = run_trial(study, series(model_bytes=[2000.0] * STEPS), values=[0.9] * STEPS)
    assert pruned_at == 0
    assert trial.user_attrs[PRUNE_REASON] == (
        "CombinedPruner member 0: budget: model_bytes measured 2000 B > budget 1000 B at step 0"
    )
    detail = trial.user_attrs[PRUNE_DETAIL]
    assert detail["rule"] == "budget"
    assert detail["pruner"] == "ResourceBudgetPruner"
    assert detail["via"] == "CombinedPruner member 0"
    assert trial.constraints == {"budget:model_bytes": 1000.0}


def test_curve_member_prunes_when_the_budget_is_kept() -> None:
    study = seeded(CombinedPruner(budget(), curve()))
    trial, pruned_at = run_trial(study, series(model_bytes=[500.0] * STEPS), values=PLATEAU)
    assert pruned_at == 3
    assert trial.user_attrs[PRUNE_REASON].startswith("CombinedPruner member 1: curve: predicted final value")
    assert trial.user_attrs[PRUNE_DETAIL]["pruner"] == "CurvePruner"
    assert trial.constraints == {}


def test_first_member_wins_when_several_would_prune() -> None:
    study = seeded(CombinedPruner(budget(), curve()))
    sizes = [500.0, 500.0, 500.0, 2000.0] + [2000.0] * (STEPS - 4)  # over budget at step 3, as the curve gives up
    trial, pruned_at = run_trial(study, series(model_bytes=sizes), values=PLATEAU)
    assert pruned_at == 3
    assert trial.user_attrs[PRUNE_DETAIL]["rule"] == "budget"
    assert trial.constraints == {"budget:model_bytes": 1000.0}


def test_builtin_member_gets_a_generic_reason() -> None:
    study = seeded(CombinedPruner(budget(), optuna.pruners.ThresholdPruner(upper=1.0)))
    trial, pruned_at = run_trial(study, series(model_bytes=[500.0] * STEPS), values=[2.0] * STEPS)
    assert pruned_at == 0
    assert trial.user_attrs[PRUNE_REASON] == (
        "CombinedPruner member 1: ThresholdPruner: intermediate value 2 at step 0 is not promising"
    )
    assert trial.user_attrs[PRUNE_DETAIL] == {
        "rule": "intermediate",
        "pruner": "ThresholdPruner",
        "metric": None,
        "value": 2.0,
        "budget": None,
        "step": 0,
        "predicted": False,
        "infeasible": False,
        "via": "CombinedPruner member 1",
    }


def test_no_member_prunes() -> None:
    study = seeded(CombinedPruner(budget(), curve(), optuna.pruners.MedianPruner(n_startup_trials=1)))
    trial, pruned_at = run_trial(study, series(model_bytes=[500.0] * STEPS), values=[0.96] * STEPS)
    assert pruned_at is None
    assert PRUNE_REASON not in trial.user_attrs


def test_multi_objective_asks_only_the_members_that_can_decide() -> None:
    pruner = CombinedPruner(optuna.pruners.MedianPruner(n_startup_trials=0), curve(), budget())
    study = optuna.create_study(directions=["maximize", "minimize"], pruner=pruner)
    study.add_trial(create_trial(values=[0.9, 1.0]))
    trial, pruned_at = run_trial(study, series(model_bytes=[500.0, 500.0, 2000.0]))
    assert pruned_at == 2
    assert trial.user_attrs[PRUNE_REASON].startswith("CombinedPruner member 2: budget: model_bytes")


def test_prune_answers_without_writing() -> None:
    """Optuna's own Trial.should_prune gets the answer; only sysprune.should_prune records the decision."""
    study = seeded(CombinedPruner(budget(), optuna.pruners.ThresholdPruner(upper=1.0)))
    trial = study.ask()
    report(trial, 0, 0.5, {"model_bytes": 2000.0})
    assert trial.should_prune()
    assert trial.user_attrs == {} and trial.constraints == {}
    assert should_prune(trial)
    assert trial.user_attrs[PRUNE_DETAIL]["via"] == "CombinedPruner member 0"
    assert trial.constraints == {"budget:model_bytes": 1000.0}
