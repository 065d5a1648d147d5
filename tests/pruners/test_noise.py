"""Noise-aware budget decisions: the pure rules on hand-made numbers, a simulation with the noise measured on this
machine, and the pruner's behaviour on noisy studies (including the once-only warning for unreported metrics)."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import optuna
import pytest

from sysprune._attrs import PRUNE_DETAIL, PRUNE_REASON
from sysprune.pruners import ResourceBudgetPruner, ThresholdBudgetPruner
from sysprune.pruners._budget import BudgetMetricWarning
from sysprune.pruners._forecast import alpha_spent
from sysprune.pruners._noise import (
    DEFAULT_ALPHA,
    LATENCY_NOISE,
    NOISY_METRICS,
    RULE_CLEAR,
    RULE_CONSECUTIVE,
    RULE_EXACT,
    WINDOW,
    NoiseModel,
    Reading,
    confident_breach,
    decision_alpha,
    noise_model,
    pending_breach,
    readings_of,
)
from tests._optuna import storage_of, trial_id

from ._helpers import run_trial, series

NOISE = LATENCY_NOISE


def _readings(values, lows=None):
    lows = lows or [None] * len(values)
    return [Reading(i, v, lo) for i, (v, lo) in enumerate(zip(values, lows))]


# --- the rules ----------------------------------------------------------------------------------------------------


def test_exact_metric_breaches_on_one_reading() -> None:
    b = confident_breach(_readings([0.5, 1.01, 0.2]), 1.0, None)
    assert (b.step, b.value, b.rule) == (1, 1.01, RULE_EXACT)
    assert confident_breach(_readings([0.5, 1.0]), 1.0, None) is None  # equal is within


def test_error_budget_is_shared_by_every_decision_and_never_overspent() -> None:
    shares = [decision_alpha(n) for n in range(1, 100_001)]
    assert shares[0] == pytest.approx(0.05 * DEFAULT_ALPHA)  # one reading may spend little
    assert shares[1] == max(shares) == pytest.approx(0.95 * DEFAULT_ALPHA / 2)  # the second most
    assert all(a > b for a, b in zip(shares[1:], shares[2:]))
    assert sum(shares) <= DEFAULT_ALPHA and sum(shares) == pytest.approx(DEFAULT_ALPHA, rel=1e-4)
    assert alpha_spent(1, 0.1, 0.5) == pytest.approx(0.05) and alpha_spent(2, 0.1, 0.5) == pytest.approx(0.025)
    with pytest.raises(ValueError, match=r"^decision: value 0 is invalid; valid: an integer >= 1$"):
        decision_alpha(0)


def test_survival_follows_the_measured_quantiles_and_a_tail_beyond_them() -> None:
    assert NOISE.survival(0.5) == 1.0 and NOISE.survival(1.0) == pytest.approx(0.5)
    assert NOISE.survival(1.2813) == pytest.approx(0.05) and NOISE.survival(1.067, low=True) == pytest.approx(0.05)
    assert NOISE.survival(2.3067) == pytest.approx(0.0005)  # the largest of 1,000 probes
    beyond = [NOISE.survival(x) for x in (2.4, 2.6, 3.0)]
    assert 0 < beyond[2] < beyond[1] < beyond[0] < 0.0005  # decays, never zero: no reading is impossible


def test_noisy_metric_one_reading_prunes_only_far_over_budget() -> None:
    assert confident_breach(_readings([1.9]), 1.0, NOISE) is None  # seen in 1 % of probes at the true value
    b = confident_breach(_readings([3.0]), 1.0, NOISE)
    assert (b.step, b.rule, b.n, b.decision) == (0, RULE_CLEAR, 1, 1)
    assert b.p <= b.alpha == pytest.approx(decision_alpha(1))


def test_noisy_metric_two_readings_over_budget_are_a_breach_when_jointly_unlikely() -> None:
    assert confident_breach(_readings([1.05, 1.05]), 1.0, NOISE) is None  # 25 % of probes read that high
    assert confident_breach(_readings([1.5, 0.9, 1.5]), 1.0, NOISE) is None  # the window holds a reading within
    b = confident_breach(_readings([1.5, 1.4]), 1.0, NOISE)
    assert (b.step, b.value, b.rule, b.n, b.decision) == (1, 1.4, RULE_CONSECUTIVE, 2, 2)
    assert b.p == pytest.approx(NOISE.survival(1.4) ** 2) and b.p <= b.alpha


def test_later_decisions_need_more_evidence_than_earlier_ones() -> None:
    # The same two readings over budget decide at readings 1-2 but not after eight readings within budget: those
    # decisions spent the budget. A longer run over budget (the window) still decides.
    assert confident_breach(_readings([1.3, 1.3]), 1.0, NOISE) is not None
    assert confident_breach(_readings([0.9] * 8 + [1.3, 1.3]), 1.0, NOISE) is None
    b = confident_breach(_readings([0.9] * 8 + [1.3] * WINDOW), 1.0, NOISE)
    assert (b.n, b.decision) == (WINDOW, 8 + WINDOW)


def test_a_breach_is_pending_only_while_one_more_reading_could_decide_it() -> None:
    assert pending_breach(_readings([1.5]), 1.0, NOISE)  # over, not clearly: the next reading decides
    assert not pending_breach(_readings([0.9]), 1.0, NOISE)  # under: a second reading would start a new run
    assert not pending_breach(_readings([1.05]), 1.0, NOISE)  # over, but too little for any second reading
    assert not pending_breach(_readings([3.0]), 1.0, NOISE)  # clear: already decided
    assert not pending_breach(_readings([1.5, 1.2]), 1.0, NOISE)  # two over: already decided
    assert not pending_breach(_readings([1.5]), 1.0, None)  # an exact metric decides on one reading
    assert not pending_breach([], 1.0, NOISE)
    assert not pending_breach(_readings([1.5], lows=[0.95]), 1.0, NOISE)  # its lower bound is within budget
    assert pending_breach(_readings([1.5], lows=[1.05]), 1.0, NOISE)


def test_which_pruners_want_a_second_structural_reading_after_step_0() -> None:
    from sysprune.pruners import CombinedPruner

    near = {"infer_ms": 1.5, "infer_ms_lo": 1.2, "model_bytes": 10.0}
    far = {"infer_ms": 0.5, "infer_ms_lo": 0.4, "model_bytes": 10.0}
    latency = ResourceBudgetPruner({"infer_ms": 1.0})
    assert latency.wants_second_reading(near) and not latency.wants_second_reading(far)
    assert not ResourceBudgetPruner({"model_bytes": 5.0}).wants_second_reading(near)  # exact: decided at step -1
    assert not ResourceBudgetPruner({"cpu_s": 1.0}).wants_second_reading(near)
    # not measurable before training (an unfitted scikit-learn estimator): step 0 gives the first reading
    assert ResourceBudgetPruner({"model_bytes": 5.0}).wants_second_reading({"model_bytes": None})
    # threshold ignores step -1: its first reading of a structural metric must come from step 0
    assert ThresholdBudgetPruner({"model_bytes": 5.0}).wants_second_reading(far)
    assert not ThresholdBudgetPruner({"cpu_s": 1.0}).wants_second_reading(far)
    both = CombinedPruner(latency, optuna.pruners.MedianPruner())
    assert both.wants_second_reading(near) and not both.wants_second_reading(far)


def test_reported_lower_bound_decides_whether_a_reading_counts_as_over() -> None:
    # Values over budget but lower bounds within: no breach, however many readings.
    assert confident_breach(_readings([1.3, 1.3, 1.3], [0.95, 0.99, 0.9]), 1.0, NOISE) is None
    # Lower bounds over budget twice running, judged by the lower bound's own measured spread.
    b = confident_breach(_readings([1.3, 1.25], [1.1, 1.05]), 1.0, NOISE)
    assert (b.step, b.rule, b.low) == (1, RULE_CONSECUTIVE, 1.05)
    assert b.p == pytest.approx(NOISE.survival(1.05, low=True) ** 2)


def test_a_stricter_trial_confidence_needs_more_evidence() -> None:
    readings = _readings([1.3, 1.3])
    assert confident_breach(readings, 1.0, NOISE, alpha=0.05) is not None
    assert confident_breach(readings, 1.0, NOISE, alpha=0.001) is None


def test_zero_budget_any_positive_reading_is_clear() -> None:
    assert confident_breach(_readings([0.0, 0.0]), 0.0, NOISE) is None
    assert confident_breach(_readings([0.001]), 0.0, NOISE).rule == RULE_CLEAR


def test_noise_model_for_declared_metrics_and_metrics_with_a_lower_bound() -> None:
    assert noise_model("infer_ms") is NOISY_METRICS["infer_ms"] is LATENCY_NOISE
    assert noise_model("n_params") is None and noise_model("model_bytes") is None and noise_model("wall_s") is None
    assert noise_model("my_latency", [Reading(0, 1.0, 0.9)]) is LATENCY_NOISE


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"probs": (0.0, 0.5), "value": (0.9, 1.1)}, "probs"),  # too few
        ({"probs": (0.1, 0.5, 0.9), "value": (0.9, 1.0, 1.1)}, "probs"),  # not from 0
        ({"probs": (0.0, 0.5, 1.0), "value": (0.9, 1.0, 1.1)}, "probs"),  # reaches 1
        ({"probs": (0.0, 0.5, 0.9), "value": (0.9, 1.2, 1.1)}, "value"),  # decreasing
        ({"probs": (0.0, 0.5, 0.9), "value": (0.9, 1.0)}, "value"),  # one short
        ({"probs": (0.0, 0.5, 0.9), "value": (0.9, 1.0, float("nan"))}, "value"),
        ({"probs": (0.0, 0.5, 0.9), "value": (0.9, 1.0, 1.1), "low": (0.0, 1.0, 1.1)}, "low"),  # not positive
    ],
)
def test_noise_model_rejects_bad_tables(kwargs, field) -> None:
    with pytest.raises(ValueError, match=rf"^NoiseModel: {field}: value .* is invalid; valid: "):
        NoiseModel(**kwargs)


def test_readings_of_skips_missing_and_pairs_lower_bounds() -> None:
    steps = {1: {"infer_ms": 2.0, "infer_ms_lo": 1.5}, -1: {"infer_ms": 1.0}, 0: {"infer_ms": None}, 2: {}}
    assert readings_of(steps, "infer_ms") == [Reading(-1, 1.0), Reading(1, 2.0, 1.5)]
    assert readings_of(steps, "infer_ms", min_step=0) == [Reading(1, 2.0, 1.5)]


# --- simulation with the noise measured on this machine ------------------------------------------------------------


def simulate(true_over_budget: float, n_trials: int, n_readings: int, seed: int, *, lows: bool = True) -> list:
    """For each simulated trial, the decision (1-based) at which it is pruned, or None.

    Each decision sees one more probe reading, drawn from the latency probe's measured noise (LATENCY_NOISE: the
    quantiles of 1,000 probes on this machine under load, benchmarks/bench_noise.py): a probe's reading and lower
    bound come from one uniform draw (a probe slowed as a whole moves both, as measured); probes are independent
    (in a study they are separated by training). The budget is 1. ``lows=False``: readings without a lower bound,
    as a plain objective that reports only ``infer_ms``.
    """
    rng = np.random.default_rng(seed)
    u = rng.random((n_trials, n_readings))
    probs = np.array(NOISE.probs)
    values = true_over_budget * np.interp(u, probs, NOISE.value)
    low = np.minimum(true_over_budget * np.interp(u, probs, NOISE.low), values)
    out = []
    for v, lo in zip(values, low):
        rs = [Reading(i, float(a), float(c) if lows else None) for i, (a, c) in enumerate(zip(v, lo))]
        b = confident_breach(rs, 1.0, NOISE)
        out.append(None if b is None else b.decision)
    return out


def _rate(pruned: list, within: int | None = None) -> float:
    return sum(p is not None and (within is None or p <= within) for p in pruned) / len(pruned)


# Two readings per trial is the runner's schedule (the pre-training probe and the last step); ten and fifty, a
# probe every step: the rate over the trial must not grow with the number of decisions.
@pytest.mark.parametrize("n_readings", [2, 10, 50])
@pytest.mark.parametrize("lows", [True, False])
def test_configuration_at_0_9x_budget_is_rarely_pruned_whatever_the_schedule(n_readings: int, lows: bool) -> None:
    assert _rate(simulate(0.9, 2000, n_readings, seed=1, lows=lows)) < 0.01


@pytest.mark.parametrize("n_readings", [2, 10, 50])
def test_configuration_at_the_budget_is_pruned_at_most_at_the_error_rate(n_readings: int) -> None:
    # The guarantee itself: a true value at the budget is the worst case of "within budget".
    assert _rate(simulate(1.0, 2000, n_readings, seed=4)) <= DEFAULT_ALPHA


def test_configuration_at_1_2x_budget_is_pruned_within_two_decisions() -> None:
    assert _rate(simulate(1.2, 2000, 2, seed=2), within=2) > 0.99


def test_a_single_lower_bound_would_not_be_safe_with_this_noise() -> None:
    # Why one reading must be far over: one `lo > budget` would prune a 0.9x configuration ~4 % of the time.
    rng = np.random.default_rng(3)
    lows = 0.9 * np.interp(rng.random(1000), NOISE.probs, NOISE.low)
    assert 0.01 < float(np.mean(lows > 1.0)) < 0.1


# --- the pruner on noisy studies ----------------------------------------------------------------------------------


def test_pruner_waits_for_readings_that_are_jointly_unlikely_within_budget() -> None:
    study = optuna.create_study(pruner=ResourceBudgetPruner({"infer_ms": 2.0}, max_steps=7, predict=False))
    trial, pruned_at = run_trial(study, series(infer_ms=[2.8, 1.9, 2.8, 2.8, 2.8, 2.8, 1.0]))
    # 2.8 alone is not enough; 1.9 within budget stays in the window of the next decisions; four running decide.
    assert pruned_at == 5
    assert trial.user_attrs[PRUNE_REASON] == (
        "budget: infer_ms measured 2.8 ms > budget 2 ms at step 5 (4 consecutive readings over budget: "
        "p = 2.2e-06 <= 0.0016, reading 6's share of the false-prune rate)"
    )
    detail = trial.user_attrs[PRUNE_DETAIL]
    assert (detail["noise_rule"], detail["measured_step"], detail["decision"]) == (RULE_CONSECUTIVE, 5, 6)
    assert detail["p"] == pytest.approx(NOISE.survival(1.4) ** 4)
    assert detail["alpha"] == pytest.approx(decision_alpha(6))
    assert trial.constraints == {"budget:infer_ms": pytest.approx(0.8)}


def test_pruner_uses_the_reported_lower_bound() -> None:
    study = optuna.create_study(pruner=ResourceBudgetPruner({"infer_ms": 2.0}, max_steps=5, predict=False))
    trial, pruned_at = run_trial(study, series(infer_ms=[2.6, 2.6, 2.6], infer_ms_lo=[1.9, 2.4, 2.0]))
    assert pruned_at is None  # the values are over budget, but not the first lower bound (nor the third)
    trial, pruned_at = run_trial(study, series(infer_ms=[2.6, 2.6, 2.6], infer_ms_lo=[2.3, 2.4, 2.0]))
    assert pruned_at == 1
    assert trial.user_attrs[PRUNE_REASON].endswith(
        "at step 1 (2 consecutive readings with lower bound over budget, last 2.4 ms: p = 0.0014 <= 0.024, "
        "reading 2's share of the false-prune rate)"
    )
    assert trial.user_attrs[PRUNE_DETAIL]["low"] == 2.4


def test_a_stricter_pruner_confidence_waits_longer() -> None:
    steps = series(infer_ms=[2.8, 2.8, 2.8, 2.8])
    _, at_95 = run_trial(optuna.create_study(pruner=ResourceBudgetPruner({"infer_ms": 2.0}, max_steps=5)), steps)
    strict = ResourceBudgetPruner({"infer_ms": 2.0}, max_steps=5, confidence=0.9999)
    _, at_9999 = run_trial(optuna.create_study(pruner=strict), steps)
    assert (at_95, at_9999) == (1, 3)


def test_pruner_prunes_a_clear_breach_at_once_and_exact_metrics_on_one_reading() -> None:
    study = optuna.create_study(pruner=ResourceBudgetPruner({"infer_ms": 2.0, "n_params": 100.0}, max_steps=3))
    trial, pruned_at = run_trial(study, series(infer_ms=[6.0, 1.0], n_params=[50.0, 50.0]))
    assert pruned_at == 0 and trial.user_attrs[PRUNE_DETAIL]["noise_rule"] == RULE_CLEAR
    trial, pruned_at = run_trial(study, series(infer_ms=[1.0, 1.0], n_params=[101.0, 101.0]))
    assert pruned_at == 0 and "noise_rule" not in trial.user_attrs[PRUNE_DETAIL]


# --- misuse is loud -----------------------------------------------------------------------------------------------


def test_unreported_budget_metric_warns_once_naming_it_and_what_was_reported(caplog) -> None:
    pruner = ResourceBudgetPruner({"infer_ms": 2.0, "wall_s": 100.0}, max_steps=3)
    study = optuna.create_study(pruner=pruner)
    with pytest.warns(BudgetMetricWarning) as record, caplog.at_level(logging.WARNING, logger="sysprune"):
        for _ in range(2):  # two trials of three steps: still one warning
            run_trial(study, series(infer_msec=[1.0, 1.0, 1.0], wall_s=[1.0, 2.0, 3.0]))
    messages = [str(w.message) for w in record if issubclass(w.category, BudgetMetricWarning)]
    assert messages == [
        "budget on 'infer_ms' has nothing to act on: trial 0 reported no 'infer_ms' up to step 0 (a misspelt name, or "
        "trial.report without sysprune.report?); metrics reported: infer_msec, wall_s"
    ]
    assert [r.getMessage() for r in caplog.records if r.name.startswith("sysprune")] == messages


@pytest.mark.parametrize("pruner_class", [ResourceBudgetPruner, ThresholdBudgetPruner])
def test_plain_trial_report_without_metrics_warns(pruner_class) -> None:
    kwargs = {"max_steps": 3} if pruner_class is ResourceBudgetPruner else {}
    study = optuna.create_study(pruner=pruner_class({"model_bytes": 1e6}, **kwargs))
    trial = study.ask()
    with warnings.catch_warnings():
        warnings.simplefilter("error", BudgetMetricWarning)
        assert not trial.should_prune()  # nothing reported yet: nothing to say
    trial.report(0.5, 0)
    with pytest.warns(BudgetMetricWarning, match=r"reported no 'model_bytes' up to step 0 .* metrics reported: none$"):
        assert not trial.should_prune()


def test_typo_warns_for_a_metric_reported_with_sysprune_report() -> None:
    from sysprune.pruners._step_api import report, should_prune

    study = optuna.create_study(pruner=ResourceBudgetPruner({"model_bytes": 1e6}, max_steps=3))
    trial = study.ask()
    report(trial, 0, 0.6, {"model_byte": 5e5, "val_accuracy": 0.6})
    with pytest.warns(BudgetMetricWarning, match=r"'model_bytes' .* metrics reported: model_byte, val_accuracy$"):
        assert not should_prune(trial)


def test_budget_metric_reported_only_as_missing_warns() -> None:
    study = optuna.create_study(pruner=ResourceBudgetPruner({"energy_j": 10.0}, max_steps=3))
    with pytest.warns(
        BudgetMetricWarning, match=r"'energy_j' has nothing to act on: trial 0 reported it only as missing"
    ):
        run_trial(study, series(energy_j=[None, None]))


def test_no_warning_when_every_budget_metric_is_reported_or_before_training() -> None:
    from sysprune.pruners._step_api import should_prune
    from sysprune.pruners import _steps

    study = optuna.create_study(pruner=ResourceBudgetPruner({"infer_ms": 2.0, "wall_s": 10.0}, max_steps=3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", BudgetMetricWarning)
        run_trial(study, series(infer_ms=[1.0, 1.0, 1.0], wall_s=[1.0, 2.0, 3.0]))
        # A pre-training row (step -1, contract 1) holds structural metrics only: no reason to warn about wall_s.
        trial = study.ask()
        _steps.remember(storage_of(study), trial_id(trial), trial.datetime_start, -1, {"infer_ms": 1.0})
        assert not should_prune(trial)


# --- feasibility of a finished trial --------------------------------------------------------------------------------


def test_settled_value_books_a_noisy_metric_infeasible_only_on_a_confident_breach() -> None:
    from sysprune.pruners._noise import settled_value

    steps = {-1: {"infer_ms": 1.8, "infer_ms_lo": 1.7}, 9: {"infer_ms": 2.2, "infer_ms_lo": 1.9}}
    assert settled_value("infer_ms", 2.2, 2.0, steps) == 2.0  # one reading over, lower bound within: feasible
    steps[9] = {"infer_ms": 2.2, "infer_ms_lo": 2.1}
    steps[-1] = {"infer_ms": 2.3, "infer_ms_lo": 2.05}
    assert settled_value("infer_ms", 2.2, 2.0, steps) == 2.2  # two lower bounds over: infeasible
    assert settled_value("infer_ms", 4.5, 2.0, {}) == 4.5  # a clear breach
    assert settled_value("infer_ms", 1.5, 2.0, {0: {"infer_ms": 1.5}}) == 1.5  # within: the value itself
    assert settled_value("model_bytes", 1001.0, 1000.0, {0: {"model_bytes": 1001.0}}) == 1001.0  # exact


def test_a_completed_trial_with_one_noisy_reading_over_budget_stays_feasible_and_best() -> None:
    budgets = {"infer_ms": 2.0}
    study = optuna.create_study(direction="maximize", pruner=ResourceBudgetPruner(budgets, max_steps=3))
    best, pruned_at = run_trial(study, series(infer_ms=[1.8, 1.9, 2.3]), values=[0.5, 0.8, 0.9], record=budgets)
    assert pruned_at is None and best.constraints == {"budget:infer_ms": 0.0}
    worse, _ = run_trial(study, series(infer_ms=[1.0, 1.0, 1.0]), values=[0.5, 0.6, 0.7], record=budgets)
    assert worse.constraints == {"budget:infer_ms": -1.0}
    assert study.best_trial.number == best.number
    over, pruned_at = run_trial(study, series(infer_ms=[2.3, 2.4, 2.4]), values=[0.9, 0.95, 0.99], record=budgets)
    assert pruned_at == 1 and over.constraints == {"budget:infer_ms": pytest.approx(0.4)}
