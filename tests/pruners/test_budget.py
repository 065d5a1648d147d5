from __future__ import annotations

import math
import warnings

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from sysprune._attrs import PRUNE_DETAIL, PRUNE_REASON
from sysprune.pruners._step_api import report, should_prune
from sysprune.storage._step_table import MetricStore
from sysprune.exceptions import InvalidArgument
from sysprune.pruners import BudgetMetricWarning, ResourceBudgetPruner, budget_constraints, record_constraints
from sysprune.pruners import _steps
from tests._optuna import trial_id

from ._helpers import cumulative, run_trial, series

DIRECTIONS = ["minimize", "maximize"]


@pytest.fixture(params=["memory", "sqlite"])
def storage(request, sqlite_url):
    return None if request.param == "memory" else sqlite_url


# --- constructor ---------------------------------------------------------------------------------------------------


def test_budget_pruner_accepts_edges() -> None:
    ResourceBudgetPruner({"wall_s": 0.0}, n_warmup_steps=0, max_steps=1, confidence=0.5)
    ResourceBudgetPruner({"model_bytes": 1, "infer_ms": 2.5}, predict=False)


_BUDGETS = "a table whose keys are system metrics and values a finite number >= 0, at least one entry"


@pytest.mark.parametrize(
    "budgets, message",
    [
        ({}, f"budgets: value {{}} is invalid; valid: {_BUDGETS}"),
        ({"val_accuracy": 0.9}, "budgets.val_accuracy: unknown system metric; valid: wall_s, cpu_s, "),
        ({"bogus": 1.0}, "budgets.bogus: unknown system metric; valid: wall_s, cpu_s, "),
        ({"wall_s": -1.0}, "budgets.wall_s: value -1.0 is invalid; valid: a finite number >= 0"),
        ({"wall_s": math.nan}, "budgets.wall_s: value nan is invalid; valid: a finite number >= 0"),
        ({"wall_s": math.inf}, "budgets.wall_s: value inf is invalid; valid: a finite number >= 0"),
        ({"wall_s": True}, "budgets.wall_s: value True is invalid; valid: a finite number >= 0"),
        ({"wall_s": "10"}, "budgets.wall_s: value '10' is invalid; valid: a finite number >= 0"),
        (["wall_s"], f"budgets: value ['wall_s'] is invalid; valid: {_BUDGETS}"),
    ],
)
def test_budget_pruner_rejects_budgets(budgets, message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        ResourceBudgetPruner(budgets)
    assert str(e.value).startswith(f"ResourceBudgetPruner: {message}")
    assert isinstance(e.value, ValueError) and isinstance(e.value, TypeError)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"predict": 1}, "predict: value 1 is invalid; valid: true or false"),
        ({"n_warmup_steps": -1}, "n_warmup_steps: value -1 is invalid; valid: an integer >= 0"),
        ({"n_warmup_steps": 1.5}, "n_warmup_steps: value 1.5 is invalid; valid: an integer >= 0"),
        ({"n_warmup_steps": True}, "n_warmup_steps: value True is invalid; valid: an integer >= 0"),
        ({"max_steps": 0}, "max_steps: value 0 is invalid; valid: an integer >= 1 or None"),
        ({"max_steps": 10.0}, "max_steps: value 10.0 is invalid; valid: an integer >= 1 or None"),
        ({"confidence": 0.4}, r"confidence: value 0.4 is invalid; valid: a finite number in [0.5, 1)"),
        ({"confidence": 1.0}, r"confidence: value 1.0 is invalid; valid: a finite number in [0.5, 1)"),
        ({"confidence": "high"}, r"confidence: value 'high' is invalid; valid: a finite number in [0.5, 1)"),
    ],
)
def test_budget_pruner_rejects_arguments(kwargs, message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        ResourceBudgetPruner({"wall_s": 10.0}, **kwargs)
    assert str(e.value) == f"ResourceBudgetPruner: {message}"


# --- measured breaches --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_measured_breach_at_step_0_prunes_at_step_0(storage, direction: str) -> None:
    pruner = ResourceBudgetPruner({"model_bytes": 1000.0, "wall_s": 100.0}, max_steps=10)
    study = optuna.create_study(storage=storage, direction=direction, pruner=pruner)
    trial, pruned_at = run_trial(study, [{"model_bytes": 2000.0, "wall_s": 1.0}] * 10, values=[0.5] * 10)
    assert pruned_at == 0
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs[PRUNE_REASON] == "budget: model_bytes measured 2000 B > budget 1000 B at step 0"
    assert trial.user_attrs[PRUNE_DETAIL] == {
        "rule": "budget",
        "pruner": "ResourceBudgetPruner",
        "metric": "model_bytes",
        "value": 2000.0,
        "budget": 1000.0,
        "step": 0,
        "predicted": False,
        "infeasible": True,
        "measured_step": 0,
    }
    assert trial.constraints == {"budget:model_bytes": 1000.0}


def test_value_equal_to_budget_is_within_budget() -> None:
    study = optuna.create_study(pruner=ResourceBudgetPruner({"infer_ms": 2.0}, max_steps=3))
    _, pruned_at = run_trial(study, series(infer_ms=[2.0, 2.0, 2.0]))
    assert pruned_at is None


def test_every_measured_breach_becomes_a_constraint_and_the_largest_names_the_reason() -> None:
    budgets = {"infer_ms": 2.0, "model_bytes": 1000.0, "peak_rss_mb": 500.0, "n_params": 10.0}
    study = optuna.create_study(pruner=ResourceBudgetPruner(budgets, max_steps=5))
    trial, pruned_at = run_trial(
        study, [{"infer_ms": 5.0, "model_bytes": 4000.0, "peak_rss_mb": 100.0, "n_params": 20.0}]
    )
    assert pruned_at == 0
    assert trial.user_attrs[PRUNE_DETAIL]["metric"] == "model_bytes"  # 4x over beats 2.5x and 2x over
    assert trial.constraints == {"budget:infer_ms": 3.0, "budget:model_bytes": 3000.0, "budget:n_params": 10.0}


def test_one_noisy_reading_near_the_budget_is_no_constraint_yet() -> None:
    # infer_ms 1.5x over in one reading is not a confident breach (k = 2 readings, or 2x the budget, needed).
    pruner = ResourceBudgetPruner({"infer_ms": 2.0, "model_bytes": 1000.0}, max_steps=5)
    study = optuna.create_study(pruner=pruner)
    trial, pruned_at = run_trial(study, [{"infer_ms": 3.0, "model_bytes": 4000.0}])
    assert pruned_at == 0
    assert trial.constraints == {"budget:model_bytes": 3000.0}


def test_predict_false_prunes_only_on_measured_values() -> None:
    pruner = ResourceBudgetPruner({"wall_s": 10.0}, predict=False, max_steps=10)
    study = optuna.create_study(pruner=pruner)
    trial, pruned_at = run_trial(study, series(wall_s=cumulative([2.0] * 10)))
    assert pruned_at == 5  # 2, 4, 6, 8, 10 (not over), 12
    assert trial.user_attrs[PRUNE_DETAIL]["predicted"] is False
    assert trial.constraints == {"budget:wall_s": 2.0}


# --- predicted breaches -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_predicted_cumulative_breach_prunes_before_the_measured_value_crosses(storage, direction: str) -> None:
    pruner = ResourceBudgetPruner({"wall_s": 10.0}, max_steps=10)
    study = optuna.create_study(storage=storage, direction=direction, pruner=pruner)
    walls = cumulative([2.0] * 10)  # 2, 4, 6: at step 2 the total at step 9 is known to be 20
    trial, pruned_at = run_trial(study, series(wall_s=walls), values=[0.1] * 10)
    assert pruned_at == 2
    assert walls[pruned_at] < 10.0  # the measured value has not crossed the budget yet
    assert trial.user_attrs[PRUNE_REASON] == (
        "budget: wall_s predicted 20 s at step 9 (>= 20 s at 97.5% confidence, cumulative forecast from 2 "
        "increments) > budget 10 s; decided at step 2"
    )
    assert trial.user_attrs[PRUNE_DETAIL] == {
        "rule": "budget",
        "pruner": "ResourceBudgetPruner",
        "metric": "wall_s",
        "value": pytest.approx(20.0),
        "budget": 10.0,
        "step": 2,
        "predicted": True,
        "infeasible": True,
        "low": pytest.approx(20.0),
        "final_step": 9,
        "confidence": pytest.approx(0.975),  # the first forecast's share of the trial's 5 % error budget
        "trial_confidence": 0.95,
    }
    assert trial.constraints == {"budget:wall_s": pytest.approx(10.0)}


def test_flat_cost_within_budget_is_not_pruned() -> None:
    study = optuna.create_study(pruner=ResourceBudgetPruner({"wall_s": 10.0, "cpu_s": 10.0}, max_steps=10))
    _, pruned_at = run_trial(study, series(wall_s=cumulative([0.9] * 10), cpu_s=cumulative([0.5] * 10)))
    assert pruned_at is None


def test_noisy_cost_within_budget_is_not_pruned() -> None:
    # Mean 0.9 per step (total 9.0 < 10) with +-0.3 of noise; after steps 1 and 3 the average runs hot.
    increments = [0.9, 1.2, 0.6, 1.2, 0.7, 1.1, 0.6, 0.9, 1.0, 0.8]
    study = optuna.create_study(pruner=ResourceBudgetPruner({"wall_s": 10.0}, max_steps=10))
    _, pruned_at = run_trial(study, series(wall_s=cumulative(increments)))
    assert pruned_at is None


def test_noisy_cost_clearly_over_budget_is_pruned_before_the_measured_crossing() -> None:
    increments = [1.6, 2.2, 1.9, 2.1, 1.8, 2.3, 2.0, 1.7, 2.2, 2.0]  # ~2 per step: ~20 > 10
    walls = cumulative(increments)
    study = optuna.create_study(pruner=ResourceBudgetPruner({"wall_s": 10.0}, max_steps=10))
    trial, pruned_at = run_trial(study, series(wall_s=walls))
    # Step 2 (1.6, 3.8, 5.7 s): forecast 20 s, at least 12.5 s at 95 % but only 4.9 s at 97.5 %, the first
    # forecast's share of the trial's error budget. Step 3 (7.8 s): forecast 20.2 s, at least 16.2 s at 98.75 %.
    assert pruned_at == 3
    assert walls[pruned_at] < 10.0
    detail = trial.user_attrs[PRUNE_DETAIL]
    assert detail["predicted"] is True and detail["confidence"] == pytest.approx(0.9875)
    assert detail["low"] == pytest.approx(16.18, abs=0.01)


def test_which_forecast_a_decision_is_does_not_depend_on_when_the_pruner_is_asked() -> None:
    from sysprune.pruners._forecast import FORECAST_FIRST_SHARE, alpha_spent

    walls = cumulative([1.0, 1.0, 1.0, 1.01, 0.99, 1.0])
    asked_each_step = ResourceBudgetPruner({"wall_s": 5.0}, max_steps=10)
    trial, pruned_at = run_trial(optuna.create_study(pruner=asked_each_step), series(wall_s=walls))
    # The third point is the first forecast: step s is forecast number s - 1.
    assert trial.user_attrs[PRUNE_DETAIL]["confidence"] == pytest.approx(
        1 - alpha_spent(pruned_at - 1, 0.05, FORECAST_FIRST_SHARE)
    )
    study = optuna.create_study(pruner=ResourceBudgetPruner({"wall_s": 5.0}, max_steps=10))
    late = study.ask()
    for step in range(pruned_at + 1):  # reported without asking, then asked once
        report(late, step, None, {"wall_s": walls[step]})
    assert should_prune(late)
    assert late.user_attrs[PRUNE_DETAIL]["confidence"] == trial.user_attrs[PRUNE_DETAIL]["confidence"]


def _forecast_false_prunes(ratio: float, per_step: bool, *, n: int = 1000, steps: int = 20, seed: int = 0) -> float:
    """Simulated trials whose cost per step is ``ratio`` of the budget's share (sd 30 %) and that a cumulative
    forecast prunes although their final total is within the budget: the share of such false prunes."""
    from sysprune.pruners._budget import _forecasts
    from sysprune.pruners._forecast import forecast_cumulative

    rng = np.random.default_rng(seed)
    budget, false = float(steps), 0
    for _ in range(n):
        totals = np.cumsum(np.maximum(rng.normal(ratio, 0.3 * ratio, steps), 0.0))
        for s in range(steps - 1):
            if per_step:  # the old way: a 95 % bound at every step
                f = forecast_cumulative([(i, float(totals[i])) for i in range(s + 1)], steps - 1, confidence=0.95)
            else:
                pts = {i: {"wall_s": float(totals[i])} for i in range(s + 1)}
                f = _forecasts(pts, {"wall_s": budget}, steps - 1, 0.05, 0).get("wall_s")
            if f is not None and f.low > budget:
                false += bool(totals[-1] <= budget)
                break
    return false / n


def test_a_95_percent_forecast_at_every_step_is_not_95_percent_over_the_trial() -> None:
    # A trial at its budget forecast at each of 18 steps: checked at 95 % every time, more than 5 % of such
    # trials are pruned and end within budget; sharing the 5 % across the forecasts keeps it under 5 %.
    assert _forecast_false_prunes(1.0, per_step=True) > 0.05
    assert _forecast_false_prunes(1.0, per_step=False) < 0.05


def test_slow_first_step_does_not_inflate_the_forecast() -> None:
    # Step 0 costs 5 s (imports, data loading), then 1 s per step: 14 s in all, within 15. A forecast from the
    # average cost so far (7 s / 3 steps x 10 steps = 23 s) would prune at step 2.
    study = optuna.create_study(pruner=ResourceBudgetPruner({"wall_s": 15.0}, max_steps=10))
    walls = [5.0] + cumulative([1.0] * 9, start=5.0)  # 5, 6, ..., 14
    _, pruned_at = run_trial(study, series(wall_s=walls))
    assert pruned_at is None


def test_level_trend_predicted_breach() -> None:
    study = optuna.create_study(pruner=ResourceBudgetPruner({"peak_rss_mb": 150.0}, max_steps=10))
    trial, pruned_at = run_trial(study, series(peak_rss_mb=[100.0, 110.0, 120.0, 130.0, 140.0, 150.0, 160.0]))
    assert pruned_at == 2  # 100, 110, 120 -> 190 at step 9
    detail = trial.user_attrs[PRUNE_DETAIL]
    assert (detail["metric"], detail["predicted"], detail["value"]) == ("peak_rss_mb", True, pytest.approx(190.0))
    assert "trend forecast from 3 points" in trial.user_attrs[PRUNE_REASON]


def test_flat_noisy_level_below_budget_is_not_pruned() -> None:
    study = optuna.create_study(pruner=ResourceBudgetPruner({"rss_mb": 450.0}, max_steps=20))
    rss = [400.0, 440.0, 380.0, 420.0, 410.0, 390.0, 430.0, 400.0, 420.0, 390.0, 410.0, 400.0, 430.0, 380.0, 420.0]
    _, pruned_at = run_trial(study, series(rss_mb=rss + [400.0, 410.0, 390.0, 420.0, 400.0]))
    assert pruned_at is None


def test_structural_metrics_are_never_trend_forecast() -> None:
    # A property of the model has no trend: a line through its noisy readings only finds the noise. The same climb
    # that prunes peak_rss_mb at step 2 leaves infer_ms and n_params alone until a reading is over budget.
    climb = [100.0, 110.0, 120.0, 130.0, 140.0, 150.0]
    for metric in ("infer_ms", "n_params", "model_bytes"):
        study = optuna.create_study(pruner=ResourceBudgetPruner({metric: 150.0}, max_steps=10))
        _, pruned_at = run_trial(study, series(**{metric: climb}))
        assert pruned_at is None, metric
    study = optuna.create_study(pruner=ResourceBudgetPruner({"peak_rss_mb": 150.0}, max_steps=10))
    assert run_trial(study, series(peak_rss_mb=climb))[1] == 2


# --- warm-up, NaN, missing ----------------------------------------------------------------------------------------


def test_warmup_delays_a_predicted_breach() -> None:
    study = optuna.create_study(pruner=ResourceBudgetPruner({"wall_s": 10.0}, n_warmup_steps=4, max_steps=10))
    trial, pruned_at = run_trial(study, series(wall_s=cumulative([2.0] * 10)))
    assert pruned_at == 4  # 10 s measured: not over the budget, the forecast (20 s) decides
    assert trial.user_attrs[PRUNE_DETAIL]["predicted"] is True


def test_warmup_does_not_delay_a_measured_breach() -> None:
    study = optuna.create_study(pruner=ResourceBudgetPruner({"wall_s": 10.0}, n_warmup_steps=8, max_steps=10))
    _, pruned_at = run_trial(study, series(wall_s=cumulative([4.0] * 10)))
    assert pruned_at == 2  # 12 s measured


def test_nan_and_missing_values_are_ignored() -> None:
    study = optuna.create_study(pruner=ResourceBudgetPruner({"wall_s": 100.0, "energy_j": 1.0}, max_steps=6))
    steps = series(wall_s=[1.0, math.nan, 3.0, None, 5.0, 6.0], energy_j=[None] * 6)
    budgets = {"wall_s": 100.0, "energy_j": 1.0}
    with pytest.warns(BudgetMetricWarning, match="'energy_j' has nothing to act on"):
        trial, pruned_at = run_trial(study, steps, values=[math.nan] * 6, final=0.5, record=budgets)
    assert pruned_at is None
    assert trial.constraints == {"budget:wall_s": -94.0}  # energy_j was never measured: no constraint


def test_measured_breach_after_missing_values() -> None:
    study = optuna.create_study(pruner=ResourceBudgetPruner({"energy_j": 10.0}, max_steps=6))
    with pytest.warns(BudgetMetricWarning, match="'energy_j' has nothing to act on"):  # at step 0
        _, pruned_at = run_trial(study, series(energy_j=[None, math.nan, 20.0, 30.0]))
    assert pruned_at == 2


def test_no_metrics_reported_never_prunes() -> None:
    study = optuna.create_study(pruner=ResourceBudgetPruner({"wall_s": 1.0}, max_steps=3))
    trial = study.ask()
    assert not should_prune(trial)
    report(trial, 0, 0.5)
    with pytest.warns(BudgetMetricWarning, match="'wall_s' has nothing to act on"):
        assert not should_prune(trial)


# --- max_steps ----------------------------------------------------------------------------------------------------


def test_max_steps_inferred_from_the_longest_completed_trial() -> None:
    study = optuna.create_study(pruner=ResourceBudgetPruner({"wall_s": 30.0}))
    # No completed trial yet: no forecast, only the measured breach (32 > 30 at step 7).
    _, pruned_at = run_trial(study, series(wall_s=cumulative([4.0] * 10)), values=[0.0] * 10)
    assert pruned_at == 7
    _, pruned_at = run_trial(study, series(wall_s=cumulative([2.0] * 10)), values=[0.0] * 10)
    assert pruned_at is None  # 20 s: completes, 10 steps long
    _, pruned_at = run_trial(study, series(wall_s=cumulative([4.0] * 10)), values=[0.0] * 10)
    assert pruned_at == 2  # forecast 40 s at step 9


def test_decision_does_not_look_at_other_trials(monkeypatch) -> None:
    study = optuna.create_study(pruner=ResourceBudgetPruner({"wall_s": 10.0}, max_steps=10))
    for i in range(3):
        study.add_trial(optuna.trial.create_trial(value=float(i), intermediate_values={0: 0.0}))

    def no_scan(*args, **kwargs):
        raise AssertionError("the budget pruner scanned the study's trials")

    monkeypatch.setattr(study, "get_trials", no_scan)
    monkeypatch.setattr(study, "_get_trials", no_scan)
    trial = study.ask()
    for step, wall in enumerate(cumulative([2.0] * 3)):
        report(trial, step, 0.0, {"wall_s": wall})
    assert should_prune(trial)


# --- where the metrics come from ----------------------------------------------------------------------------------


def test_decision_reads_the_store_when_the_cache_is_empty(sqlite_url: str) -> None:
    study = optuna.create_study(storage=sqlite_url, pruner=ResourceBudgetPruner({"wall_s": 10.0}, max_steps=10))
    trial = study.ask()
    for step, wall in enumerate(cumulative([2.0] * 3)):
        report(trial, step, 0.0, {"wall_s": wall})
    _steps.clear()
    assert should_prune(trial)


def test_metrics_written_by_another_process_are_read_from_the_store(sqlite_url: str) -> None:
    study = optuna.create_study(storage=sqlite_url, pruner=ResourceBudgetPruner({"infer_ms": 2.0}, max_steps=10))
    trial = study.ask()
    MetricStore(sqlite_url).write_step(
        study_name=study.study_name,
        trial_id=trial_id(trial),
        trial_number=trial.number,
        step=0,
        metrics={"infer_ms": 5.0},
    )
    assert should_prune(trial)


# --- feasibility --------------------------------------------------------------------------------------------------

BUDGETS = {"wall_s": 10.0}


def test_best_trial_skips_pruned_and_over_budget_trials(storage) -> None:
    pruner = ResourceBudgetPruner(BUDGETS, max_steps=5)
    study = optuna.create_study(storage=storage, direction="maximize", pruner=pruner)
    walls = [1.0, 2.0, 3.0, 4.0, 5.0]
    ok, pruned_at = run_trial(study, series(wall_s=walls), values=[0.5, 0.6, 0.7, 0.8, 0.8], record=BUDGETS)
    assert pruned_at is None
    assert ok.constraints == {"budget:wall_s": -5.0}
    pruned, pruned_at = run_trial(study, series(wall_s=[20.0] * 5), values=[0.99] * 5, record=BUDGETS)
    assert pruned_at == 0 and pruned.constraints == {"budget:wall_s": 10.0}
    # Completed, but the final measurement (teardown included) is over budget: infeasible too.
    trial = study.ask()
    for step, wall in enumerate([1.0, 2.0, 3.0, 4.0, 5.0]):
        report(trial, step, 0.95, {"wall_s": wall})
        assert not should_prune(trial)
    record_constraints(trial, BUDGETS, {"wall_s": 12.5})
    study.tell(trial, 0.95)
    assert study.trials[trial.number].constraints == {"budget:wall_s": 2.5}

    assert study.best_trial.number == ok.number
    assert study.best_value == 0.8


def test_tpe_puts_pruned_budget_trials_with_the_infeasible() -> None:
    # TPESampler reads FrozenTrial.constraints itself (no constraints_func): a pruned trial with a positive
    # constraint is ranked with the infeasible trials, after every feasible one.
    from optuna.samplers._tpe.sampler import _split_trials

    study = optuna.create_study(direction="maximize", pruner=ResourceBudgetPruner(BUDGETS, max_steps=5))
    feasible, _ = run_trial(study, series(wall_s=[1.0] * 5), values=[0.1] * 5, record=BUDGETS)
    infeasible, pruned_at = run_trial(study, series(wall_s=[20.0]), values=[0.9], record=BUDGETS)
    assert pruned_at == 0
    below, above = _split_trials(study, study.trials, 1)
    assert [t.number for t in below] == [feasible.number]
    assert [t.number for t in above] == [infeasible.number]


# --- multi-objective ----------------------------------------------------------------------------------------------


def test_multi_objective_study_prunes_on_a_budget(storage) -> None:
    pruner = ResourceBudgetPruner({"infer_ms": 2.0, "wall_s": 10.0}, max_steps=10)
    study = optuna.create_study(storage=storage, directions=["maximize", "minimize"], pruner=pruner)

    trial = study.ask()
    with pytest.raises(NotImplementedError):
        trial.should_prune()  # Optuna refuses; sysprune.should_prune does not
    report(trial, 0, None, {"infer_ms": 1.0, "wall_s": 2.0})
    assert not should_prune(trial)
    report(trial, 1, None, {"infer_ms": 1.0, "wall_s": 4.0})
    assert not should_prune(trial)
    report(trial, 2, None, {"infer_ms": 1.0, "wall_s": 6.0})
    assert should_prune(trial)  # forecast 20 s
    study.tell(trial, state=TrialState.PRUNED)
    assert study.trials[0].constraints == {"budget:wall_s": pytest.approx(10.0)}

    fast, pruned_at = run_trial(study, series(infer_ms=[5.0], wall_s=[0.1]))
    assert pruned_at == 0
    assert fast.user_attrs[PRUNE_DETAIL]["metric"] == "infer_ms"

    ok, pruned_at = run_trial(
        study, series(infer_ms=[1.0] * 10, wall_s=cumulative([0.5] * 10)), final=[0.9, 1.0], record=pruner.budgets
    )
    assert pruned_at is None
    assert [t.number for t in study.best_trials] == [ok.number]


def test_multi_objective_report_refuses_a_value() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    trial = study.ask()
    with pytest.raises(
        ValueError, match=r"^report: value: value 0.5 is invalid; valid: None in a multi-objective study"
    ):
        report(trial, 0, 0.5, {"wall_s": 1.0})


# --- record_constraints -------------------------------------------------------------------------------------------


def test_record_constraints_is_idempotent_and_keeps_the_pruners_value() -> None:
    budgets = {"wall_s": 10.0, "infer_ms": 2.0, "energy_j": 5.0}
    study = optuna.create_study(pruner=ResourceBudgetPruner(budgets, max_steps=10))
    trial = study.ask()
    for step, wall in enumerate(cumulative([2.0] * 3)):
        report(trial, step, 0.0, {"wall_s": wall, "infer_ms": 1.5, "energy_j": None})
    with pytest.warns(BudgetMetricWarning, match="'energy_j' has nothing to act on"):
        assert should_prune(trial)  # wall_s forecast 20 s: constraint 10
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna warns when a constraint is set twice: it must not happen
        first = record_constraints(trial, budgets, {"wall_s": 6.0})
        second = record_constraints(trial, budgets, {"wall_s": 6.0})
    assert first == second == {"wall_s": pytest.approx(10.0), "infer_ms": -0.5}
    assert budget_constraints(trial) == first


def test_record_constraints_prefers_final_metrics_then_the_last_recorded_value() -> None:
    study = optuna.create_study()
    trial = study.ask()
    report(trial, 0, 0.0, {"wall_s": 1.0, "peak_rss_mb": 300.0})
    report(trial, 1, 0.0, {"wall_s": 2.0, "peak_rss_mb": None})
    got = record_constraints(trial, {"wall_s": 1.5, "peak_rss_mb": 200.0, "cpu_s": 1.0}, {"wall_s": 2.5, "cpu_s": None})
    assert got == {"wall_s": 1.0, "peak_rss_mb": 100.0}


def test_record_constraints_rejects_unknown_metrics() -> None:
    study = optuna.create_study()
    with pytest.raises(
        ValueError,
        match=r"^record_constraints: budgets\.val_loss: val_loss is a learning metric, not a system metric .*; valid: ",
    ):
        record_constraints(study.ask(), {"val_loss": 1.0})
