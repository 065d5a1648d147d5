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
from sysprune.pruners._dryrun import PRIORS, LogRatioPrior, bound, log_ratios

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
    prior = PRIORS["cpu_s"]  # the point prediction: the posterior mean of the log ratio (prior worth one trial)
    mean = (prior.weight * prior.mean + 4 * np.mean(np.log([1.1, 1.2, 1.15, 1.12]))) / (prior.weight + 4)
    assert reason.startswith("budget: cpu_s predicted ") and " s at step 9 (>= " in reason
    assert float(reason.split()[3]) == pytest.approx(20 * math.exp(mean), rel=5e-3)
    assert "a dry run of the first mini-batches, scaled by measured/predicted of 4 finished trials" in reason
    assert reason.endswith("> budget 10 s; decided at step -1")


def test_a_prediction_under_budget_or_within_the_ratios_spread_goes_on():
    study = _study()
    for r in (0.8, 1.2, 1.0, 0.9):
        _finished(study, 5.0, 5.0 * r)
    assert _decide_at_pretrain(study, 8.0) == (False, None)  # point 7.4, far under
    assert _decide_at_pretrain(study, 11.0) == (False, None)  # point 10.2 over, but not confidently


def test_the_first_trial_is_judged_by_the_prior_alone_and_only_far_over_budget():
    # No finished trial yet: the prior's wide interval (cpu_s: 97.5 % one-sided, three pseudo degrees of freedom)
    # prunes a prediction many times the budget and lets one twice the budget run to be measured.
    study = _study()
    assert _decide_at_pretrain(study, 2.0 * BUDGET) == (False, None)
    pruned, reason = _decide_at_pretrain(study, 10.0 * BUDGET)
    assert pruned
    assert "scaled by measured/predicted of 0 finished trials and the study families' prior" in reason


def test_the_studys_own_ratios_take_over_from_the_prior():
    # A prediction twice the budget: too close for the prior alone; once six trials bore predictions out within
    # 2 %, it is pruned; had they been all over the place (ratios 0.3-1.2), it would not be.
    study = _study()
    assert _decide_at_pretrain(study, 2.0 * BUDGET) == (False, None)
    for r in (1.0, 1.02, 0.98, 1.01, 0.99, 1.0):
        _finished(study, 5.0, 5.0 * r)
    assert _decide_at_pretrain(study, 2.0 * BUDGET)[0]
    scattered = _study()
    for r in (0.3, 1.2, 0.5, 1.1, 0.4, 0.9):
        _finished(scattered, 5.0, 5.0 * r)
    assert _decide_at_pretrain(scattered, 2.0 * BUDGET) == (False, None)


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


def test_the_bound_is_the_posterior_predictive_of_a_normal_inverse_chi_square_prior():
    from scipy import stats

    prior = LogRatioPrior(mean=-0.1, sd=0.3, dof=3, weight=1.0)
    ratios = [0.0, 0.1, -0.1]
    b = bound(10.0, ratios, 0.975, prior)
    # by hand (Gelman et al. 3.6): kappa 4, mu (1 * -0.1 + 3 * 0) / 4, nu 6,
    # nu sigma^2 = 3 * 0.09 + 0.02 + 1 * 3 / 4 * 0.1^2
    mu = -0.025
    sigma = math.sqrt((0.27 + 0.02 + 0.0075) / 6)
    low = 10.0 * math.exp(mu - stats.t.ppf(0.975, 6) * sigma * math.sqrt(1 + 1 / 4))
    assert b.value == pytest.approx(10.0 * math.exp(mu)) and b.low == pytest.approx(low) and b.n == 3
    # no ratio yet: the prior predictive
    b0 = bound(10.0, [], 0.975, prior)
    assert b0.n == 0 and b0.value == pytest.approx(10.0 * math.exp(-0.1))
    assert b0.low == pytest.approx(10.0 * math.exp(-0.1 - stats.t.ppf(0.975, 3) * 0.3 * math.sqrt(2)))
    # many ratios: Student's interval of the study's own ratios, the prior washed out
    rng = np.random.default_rng(0)
    many = list(rng.normal(0.2, 0.05, 2000))
    sd = float(np.std(many, ddof=1))
    student = 10.0 * math.exp(np.mean(many) - stats.t.ppf(0.975, 1999) * sd * math.sqrt(1 + 1 / 2000))
    assert bound(10.0, many, 0.975, prior).low == pytest.approx(student, rel=5e-3)
    assert bound(0.0, ratios, 0.975, prior) is None and bound(math.inf, ratios, 0.975, prior) is None


def test_every_predicted_metric_has_a_prior():
    from sysprune.metrics._dryrun import PREDICTS

    assert set(PRIORS) == set(PREDICTS)


@pytest.mark.parametrize("true_ratio", [0.9, 1.0])
@pytest.mark.parametrize("study_bias", [-0.4, 0.0, 0.3])
def test_noisy_ratios_hold_the_false_prune_rate_for_trials_at_or_under_budget(true_ratio: float, study_bias: float):
    # Each trial's measured/predicted ratio is lognormal (sd 15 % on the log scale) around a study's own bias (the
    # dry run over-predicts this study's cost by e^0.4, or is right, or under-predicts by e^0.3); a trial whose
    # true cost is at or under the budget must be pruned at step -1 in at most (1 - confidence) / 2 of the cases
    # (the first decision's share), from the study's first trial on: simulated over 2,000 fresh trials.
    rng = np.random.default_rng(0)
    sd = 0.15
    falses = tries = 0
    for _ in range(200):
        study = _study()
        for k in range(int(rng.integers(0, 12))):
            pred = float(rng.uniform(2, 8))
            _finished(study, pred, pred * math.exp(rng.normal(study_bias, sd)))
        for _ in range(10):
            r = math.exp(rng.normal(study_bias, sd))
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
