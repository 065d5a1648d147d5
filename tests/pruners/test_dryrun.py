"""Deciding at step -1 on time and memory from a dry run: the prediction scaled by the study's own
measured/predicted ratios, through the public API (``sysprune.report`` / ``sysprune.should_prune``), and the
false-prune rate that bound holds when the ratios are noisy."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

import sysprune
from sysprune.pruners._dryrun import MIN_TRIALS, bound, log_ratios

STEPS = 10
BUDGET = 10.0  # cpu_s


def _finished(study: optuna.Study, pred: float, measured: float) -> None:
    """A COMPLETE trial whose dry run predicted ``pred`` cpu_s and which measured ``measured``."""
    study.add_trial(
        optuna.trial.create_trial(
            value=0.9,
            user_attrs={"cpu_s": measured, "pred_cpu_s": pred},
            intermediate_values={s: 0.9 for s in range(STEPS)},
        )
    )


def _decide_at_pretrain(study: optuna.Study, pred: float, **metrics: float) -> tuple[bool, str | None]:
    trial = study.ask()
    sysprune.report(trial, -1, None, {"cpu_s": 0.3, "wall_s": 0.4, "pred_cpu_s": pred, **metrics})
    pruned = sysprune.should_prune(trial)
    reason = trial.study.trials[trial.number].user_attrs.get("prune_reason") if pruned else None
    study.tell(trial, state=TrialState.PRUNED if pruned else TrialState.FAIL)
    return pruned, reason


def _study(**kw) -> optuna.Study:
    return optuna.create_study(
        direction="maximize", pruner=sysprune.ResourceBudgetPruner({"cpu_s": BUDGET}, max_steps=STEPS, **kw)
    )


def test_a_prediction_confidently_over_budget_is_pruned_at_step_minus_1_with_its_reason():
    study = _study()
    for r in (1.1, 1.2, 1.15, 1.12):
        _finished(study, 5.0, 5.0 * r)
    pruned, reason = _decide_at_pretrain(study, 20.0)
    assert pruned
    gm = math.exp(np.mean(np.log([1.1, 1.2, 1.15, 1.12])))
    assert reason.startswith(f"budget: cpu_s predicted {20 * gm:.2f} s at step 9 (>= ")
    assert "a dry run of the first mini-batches, scaled by measured/predicted of 4 finished trials" in reason
    assert reason.endswith("> budget 10 s; decided at step -1")


def test_a_prediction_under_budget_or_within_the_ratios_spread_goes_on():
    study = _study()
    for r in (0.8, 1.2, 1.0, 0.9):
        _finished(study, 5.0, 5.0 * r)
    assert _decide_at_pretrain(study, 8.0) == (False, None)  # point 7.4, far under
    assert _decide_at_pretrain(study, 11.0) == (False, None)  # point 10.2 over, but not confidently


def test_no_decision_before_enough_finished_trials_bear_the_predictions_out():
    study = _study()
    for r in (1.0,) * (MIN_TRIALS - 1):
        _finished(study, 5.0, 5.0 * r)
    assert _decide_at_pretrain(study, 100.0) == (False, None)
    _finished(study, 5.0, 5.0)
    assert _decide_at_pretrain(study, 100.0)[0]


def test_without_predict_the_dry_run_is_neither_asked_for_nor_used():
    assert sysprune.ResourceBudgetPruner({"cpu_s": 1.0}).wants_dry_run()
    assert sysprune.ResourceBudgetPruner({"peak_rss_delta_mb": 1.0}).wants_dry_run()
    assert not sysprune.ResourceBudgetPruner({"cpu_s": 1.0}, predict=False).wants_dry_run()
    assert not sysprune.ResourceBudgetPruner({"infer_ms": 1.0}).wants_dry_run()  # nothing a dry run predicts
    combined = sysprune.CombinedPruner(sysprune.ResourceBudgetPruner({"wall_s": 1.0}), optuna.pruners.MedianPruner())
    assert combined.wants_dry_run()
    study = _study(predict=False)
    for _ in range(5):
        _finished(study, 5.0, 5.0)
    assert _decide_at_pretrain(study, 100.0) == (False, None)


def test_log_ratios_read_final_values_and_skip_what_is_missing_or_not_positive():
    assert log_ratios({"cpu_s": 2.0, "pred_cpu_s": 1.0}) == {"cpu_s": pytest.approx(math.log(2))}
    assert log_ratios({"cpu_s": 2.0}) == {}
    assert log_ratios({"cpu_s": 0.0, "pred_cpu_s": 1.0, "peak_rss_mb": 3.0, "pred_peak_rss_mb": 2.0}) == {
        "peak_rss_mb": pytest.approx(math.log(1.5))
    }


def test_the_bound_is_students_prediction_interval_on_the_log_ratios():
    ratios = [0.0, 0.1, -0.1]
    b = bound(10.0, ratios, 0.975)
    from scipy import stats

    spread = stats.t.ppf(0.975, 2) * 0.1 * math.sqrt(1 + 1 / 3)
    assert b.value == pytest.approx(10.0) and b.low == pytest.approx(10.0 * math.exp(-spread)) and b.n == 3
    assert bound(10.0, ratios[:2], 0.975) is None


@pytest.mark.parametrize("true_ratio", [0.9, 1.0])
def test_noisy_ratios_hold_the_false_prune_rate_for_trials_at_or_under_budget(true_ratio: float):
    # Each trial's measured/predicted ratio is lognormal (sd 15 % on the log scale); a trial whose true cost is
    # at or under the budget must be pruned at step -1 in at most (1 - confidence) / 2 of the cases (the first
    # decision's share): simulated over 2,000 studies' worth of fresh trials.
    rng = np.random.default_rng(0)
    sd = 0.15
    falses = tries = 0
    for _ in range(200):
        study = _study()
        for _ in range(int(rng.integers(3, 12))):
            pred = float(rng.uniform(2, 8))
            _finished(study, pred, pred * math.exp(rng.normal(0, sd)))
        for _ in range(10):
            r = math.exp(rng.normal(0, sd))
            pred = true_ratio * BUDGET / r  # the dry run's prediction of a trial whose true cost is true_ratio x budget
            falses += _decide_at_pretrain(study, pred)[0]
            tries += 1
    assert falses / tries <= 0.025 + 3 * math.sqrt(0.025 * 0.975 / tries), falses / tries


def test_a_trial_twice_over_budget_is_pruned_at_step_minus_1_almost_always():
    rng = np.random.default_rng(1)
    hits = tries = 0
    for _ in range(100):
        study = _study()
        for _ in range(6):
            pred = float(rng.uniform(2, 8))
            _finished(study, pred, pred * math.exp(rng.normal(0, 0.15)))
        for _ in range(5):
            pred = 2.0 * BUDGET / math.exp(rng.normal(0, 0.15))
            hits += _decide_at_pretrain(study, pred)[0]
            tries += 1
    assert hits / tries >= 0.9, hits / tries
