"""The curve pruner's first evidence: how the study's finished curves went on after each step (pruners/_gains.py),
as pure arithmetic and through Optuna's ask/report/should_prune/tell."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.trial import create_trial
from scipy import stats

from sysprune._attrs import PRUNE_DETAIL, PRUNE_REASON
from sysprune.pruners import CurvePruner
from sysprune.pruners._forecast import finite_points
from sysprune.pruners._gains import EPS, MIN_TRIALS, StudyGains, running_best

from ._helpers import run_trial

STEPS = 6


def _logit(v: float) -> float:
    return math.log(v / (1 - v))


def _finished(study: optuna.Study, curve: list[float]) -> None:
    study.add_trial(create_trial(value=curve[-1], intermediate_values=dict(enumerate(curve))))


def _run(study: optuna.Study, curve: list[float]) -> int | None:
    """Report ``curve`` step by step; the step the trial was pruned at, or None if it completed."""
    return run_trial(study, [{}] * len(curve), curve)[1]


def test_the_bound_is_students_prediction_interval_of_the_gains_on_the_logit_scale():
    gains = StudyGains(maximize=True)
    # the third dips: its running best at step 1 is 0.85
    curves = [[0.5, 0.8, 0.9], [0.6, 0.7, 0.95], [0.4, 0.85, 0.8], [0.5, 0.6, 0.7], [0.7, 0.9, 0.92]]
    for c in curves:
        gains.add(dict(enumerate(c)))
    running_at_1 = [0.8, 0.7, 0.85, 0.6, 0.9]
    g = [_logit(c[2]) - _logit(r) for c, r in zip(curves, running_at_1)]
    b = gains.bound(0.6, 1, 0.975)
    spread = stats.t.ppf(0.975, 4) * np.std(g, ddof=1) * math.sqrt(1 + 1 / 5)
    expit = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert b.scale == "logit" and b.n == MIN_TRIALS == 5
    assert b.expected == pytest.approx(expit(_logit(0.6) + np.mean(g)))
    assert b.optimistic == pytest.approx(expit(_logit(0.6) + np.mean(g) + spread))
    # one reading's noise: the SD of the last reading minus the one before, over sqrt(2)
    tails = [_logit(c[2]) - _logit(c[1]) for c in curves]
    assert b.noise == pytest.approx(np.std(tails, ddof=1) / math.sqrt(2))
    assert b.bar(0.9) == pytest.approx(expit(_logit(0.9) - b.noise))
    assert b.reaches(expit(_logit(b.optimistic) + b.noise - 1e-6))
    assert not b.reaches(expit(_logit(b.optimistic) + b.noise + 1e-6))
    assert gains.bound(0.6, 2, 0.975) is None  # the final step has no gain after it
    assert StudyGains().bound(0.6, 1, 0.975) is None
    four = StudyGains()
    for c in curves[:4]:
        four.add(dict(enumerate(c)))
    assert four.bound(0.6, 1, 0.975) is None  # fewer than MIN_TRIALS


def test_values_outside_0_1_use_their_own_scale_and_a_minimised_objective_gains_downwards():
    gains = StudyGains(maximize=False)
    curves = ([3.0, 2.0, 1.0], [4.0, 2.5, 2.0], [5.0, 3.0, 2.5], [2.0, 1.5, 1.4], [3.0, 2.2, 2.0])
    for c in curves:
        gains.add(dict(enumerate(c)))
    g = [1.0, 0.5, 0.5, 0.1, 0.2]  # running best at step 1 minus the final value
    b = gains.bound(2.2, 1, 0.95)
    spread = stats.t.ppf(0.95, 4) * np.std(g, ddof=1) * math.sqrt(1 + 1 / 5)
    assert b.scale == "identity"
    assert b.expected == pytest.approx(2.2 - np.mean(g)) and b.optimistic == pytest.approx(2.2 - np.mean(g) - spread)
    noise = np.std([c[2] - c[1] for c in curves], ddof=1) / math.sqrt(2)
    assert b.bar(1.0) == pytest.approx(1.0 + noise)  # minimised: the bar sits above the best by the noise
    assert b.reaches(b.optimistic - noise + 1e-9) and not b.reaches(b.optimistic - noise - 1e-6)


def test_a_best_of_1_is_within_reach_of_a_bound_at_the_logit_scales_top():
    gains = StudyGains(maximize=True)
    for _ in range(MIN_TRIALS):
        gains.add({0: 0.5, 1: 1.0})
    b = gains.bound(1.0, 0, 0.975)  # no spread: the optimistic bound is the clipped top itself
    assert b.reaches(1.0) and b.optimistic > 1 - EPS


def test_running_best_skips_dips_and_nan():
    points = finite_points({0: 0.5, 1: 0.7, 2: 0.6, 3: float("nan")})
    assert running_best(points, 3, maximize=True) == 0.7
    assert running_best(points, 3, maximize=False) == 0.5
    assert running_best(points, 0, maximize=True) == 0.5  # only the steps up to the one asked
    assert running_best(finite_points({0: float("nan")}), 0, maximize=True) is None


def test_a_trial_that_cannot_catch_up_is_pruned_at_the_first_decision_with_its_reason():
    study = optuna.create_study(direction="maximize", pruner=CurvePruner(max_steps=STEPS))
    for top in (0.90, 0.92, 0.95, 0.93, 0.91):
        _finished(study, [top - 0.3, top - 0.1, top - 0.05, top - 0.02, top - 0.01, top])
    assert _run(study, [0.3, 0.4, 0.45, 0.5, 0.5, 0.5]) == 1
    reason = study.trials[-1].user_attrs[PRUNE_REASON]
    assert reason.startswith("curve: best so far 0.4 can reach ")
    assert "the gains of 5 finished trials after step 1" in reason
    assert "(best feasible 0.95 less one reading's noise); decided at step 1" in reason
    detail = study.trials[-1].user_attrs[PRUNE_DETAIL]
    assert detail["evidence"] == "study_gains" and detail["best_feasible"] == 0.95 and detail["decision"] == 1
    # one on course for the best is not
    assert _run(study, [0.66, 0.86, 0.91, 0.94, 0.95, 0.96]) is None


def test_before_five_finished_trials_the_fit_decides_and_study_gains_false_never_uses_gains():
    study = optuna.create_study(direction="maximize", pruner=CurvePruner(max_steps=STEPS))
    for top in (0.90, 0.95, 0.92, 0.93):
        _finished(study, [top - 0.3, top - 0.1, top - 0.05, top - 0.02, top - 0.01, top])
    assert _run(study, [0.3, 0.4, 0.45, 0.5, 0.5, 0.5]) is not None
    assert study.trials[-1].user_attrs[PRUNE_DETAIL]["evidence"] == "fit"
    fit_only = optuna.create_study(direction="maximize", pruner=CurvePruner(max_steps=STEPS, study_gains=False))
    for top in (0.90, 0.92, 0.95, 0.93, 0.91):
        _finished(fit_only, [top - 0.3, top - 0.1, top - 0.05, top - 0.02, top - 0.01, top])
    _run(fit_only, [0.3, 0.4, 0.45, 0.5, 0.5, 0.5])
    assert fit_only.trials[-1].user_attrs[PRUNE_DETAIL]["evidence"] == "fit"


def test_study_gains_is_validated():
    with pytest.raises(ValueError, match="study_gains: value 'yes' is invalid"):
        CurvePruner(study_gains="yes")


def test_a_trial_that_would_beat_the_best_is_pruned_at_most_at_probability():
    # Accuracy curves of a study: each trial's error falls to its final error e ~ U(0.03, 0.15) as
    # e * exp(g * ((s+1)^-0.7 - 6^-0.7)) (error shrinks by a factor, as training curves do), with a gain g that
    # varies from trial to trial, and every reading carries noise (sd 0.008: a 1,500-example validation split).
    # The trial judged is one whose final reading beats every finished trial's (drawn until it does: a near tie won
    # by its noise counts too); over 400 studies it must be pruned in at most `probability` (5 %) of them.
    rng = np.random.default_rng(0)

    def curve(level: float) -> list[float]:
        g = rng.uniform(0.5, 2.5)
        return [
            float(np.clip(1 - (1 - level) * math.exp(g * ((s + 1) ** -0.7 - STEPS**-0.7)) + rng.normal(0, 0.008), 0, 1))
            for s in range(STEPS)
        ]

    pruned = 0
    for _ in range(400):
        study = optuna.create_study(direction="maximize", pruner=CurvePruner(max_steps=STEPS))
        finals = []
        for _ in range(int(rng.integers(3, 15))):
            c = curve(float(rng.uniform(0.85, 0.97)))
            _finished(study, c)
            finals.append(c[-1])
        best = max(finals)
        c = curve(best)
        while c[-1] <= best:
            c = curve(best)
        pruned += _run(study, c) is not None
    assert pruned / 400 <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 400), pruned / 400


def test_most_trials_that_end_far_below_the_best_are_pruned_early():
    # the same studies; a trial whose final error is twice the best's is pruned, mostly at step 1 or 2
    rng = np.random.default_rng(1)
    at = []
    for _ in range(100):
        study = optuna.create_study(direction="maximize", pruner=CurvePruner(max_steps=STEPS))
        levels = rng.uniform(0.85, 0.97, size=int(rng.integers(5, 15)))
        for level in levels:
            g = rng.uniform(0.5, 2.5)
            _finished(study, [1 - (1 - level) * math.exp(g * ((s + 1) ** -0.7 - STEPS**-0.7)) for s in range(STEPS)])
        worse = 1 - 2 * (1 - levels.max())
        g = rng.uniform(0.5, 2.5)
        at.append(_run(study, [1 - (1 - worse) * math.exp(g * ((s + 1) ** -0.7 - STEPS**-0.7)) for s in range(STEPS)]))
    assert sum(a is not None for a in at) >= 90
    assert sum(a is not None and a <= 2 for a in at) >= 75
