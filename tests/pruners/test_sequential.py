"""Sound sequential decisions through the public API: a plain Optuna objective that reports a noisy latency at every
step (``sysprune.report`` / ``sysprune.should_prune`` in ask/tell loops), simulated over many trials.

A structural metric has no trend, so a flat noisy latency is never forecast; and the noisy metric's decisions share
the trial's false-prune rate, so reading it at every step does not multiply the chances of a false prune.
"""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

import sysprune

BUDGET = 1.0  # ms
STEPS = 10


def _noisy_latency_study(true_ms: float, noise: str, n_trials: int, seed: int) -> list[int | None]:
    """``n_trials`` trials of a plain objective reporting ``infer_ms`` (and an accuracy) at each of STEPS steps; the
    decision (1-based: the n-th reading) at which each was pruned, or None. Readings: the true value plus noise in
    units of the budget — ``uniform``: spread evenly over +-5 %; ``normal``: sd 2.5 % (95 % of readings within
    +-5 %)."""
    rng = np.random.default_rng(seed)
    study = optuna.create_study(
        direction="maximize", pruner=sysprune.ResourceBudgetPruner({"infer_ms": BUDGET}, max_steps=STEPS)
    )
    out: list[int | None] = []
    for _ in range(n_trials):
        trial = study.ask()
        pruned = None
        for step in range(STEPS):
            spread = rng.uniform(-0.05, 0.05) if noise == "uniform" else rng.normal(0.0, 0.025)
            sysprune.report(trial, step, 0.5 + 0.04 * step, {"infer_ms": true_ms + spread * BUDGET})
            if sysprune.should_prune(trial):
                pruned = step + 1
                break
        if pruned is None:
            study.tell(trial, 0.5 + 0.04 * (STEPS - 1))
        else:
            study.tell(trial, state=TrialState.PRUNED)
        out.append(pruned)
    return out


@pytest.mark.parametrize("noise", ["uniform", "normal"])
def test_flat_noisy_latency_at_0_9x_budget_is_pruned_in_under_1_percent_of_trials(noise: str) -> None:
    pruned = _noisy_latency_study(0.9 * BUDGET, noise, n_trials=1000, seed=1)
    assert sum(p is not None for p in pruned) / len(pruned) < 0.01


@pytest.mark.parametrize("noise", ["uniform", "normal"])
def test_noisy_latency_at_1_2x_budget_is_pruned_within_two_decisions(noise: str) -> None:
    pruned = _noisy_latency_study(1.2 * BUDGET, noise, n_trials=1000, seed=2)
    assert sum(p is not None and p <= 2 for p in pruned) / len(pruned) >= 0.99
