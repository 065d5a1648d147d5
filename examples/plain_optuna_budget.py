"""A plain Optuna script — no sysprune runner — that prunes trials on system budgets.

The objective trains a small scikit-learn MLP on the digits dataset one epoch per step and measures its system
metrics with ``sysprune.measure`` (CPU and wall time since the trial started, memory, inference latency, model
size: the names the sysprune runner records). Each step it calls ``sysprune.report`` and ``sysprune.should_prune``; ``sysprune.ResourceBudgetPruner`` stops trials that are
over budget (measured) or will be (forecast), and marks them infeasible so that TPE steers away and
``study.best_trial`` is the best trial *within* budget.

Run:  python examples/plain_optuna_budget.py --n-trials 30 --steps 20 [--storage sqlite:///budget.db]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import optuna
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

import sysprune

BUDGETS = {
    "model_bytes": 150_000.0,  # serialised model size: known at step 0
    "infer_ms": 0.5,  # per-sample latency at batch 256: known at step 0 (generous: timing on a busy VM is noisy)
    "cpu_s": 0.8,  # CPU seconds for the whole trial (20 steps): forecast from the first steps
}


def make_objective(n_steps: int, seed: int):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
    classes = np.unique(y)
    probe_batch = X_val[:256]  # the latency probe's batch: infer_ms is per sample at this batch size

    def objective(trial: optuna.Trial) -> float:
        width = trial.suggest_int("width", 8, 512, log=True)
        depth = trial.suggest_int("depth", 1, 3)
        lr = trial.suggest_float("learning_rate_init", 1e-4, 1e-1, log=True)
        model = MLPClassifier(hidden_layer_sizes=(width,) * depth, learning_rate_init=lr, random_state=seed)

        # Clocks start here (wall_s, cpu_s are cumulative for the trial; the probes' own time is left out) and the
        # process's peak RSS is reset, so peak_rss_mb is this trial's (one trial at a time in this process).
        meter = sysprune.measure(model=model, batch=probe_batch)
        accuracy = float("nan")
        for step in range(n_steps):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.partial_fit(X_train, y_train, classes=classes)
            accuracy = float(model.score(X_val, y_val))
            # Size and latency do not change while the MLP trains: probe them at the first and the last step.
            metrics = meter.sample(structural=step in (0, n_steps - 1))
            sysprune.report(trial, step, accuracy, metrics)
            if sysprune.should_prune(trial):
                raise optuna.TrialPruned()
        # Optional: give completed trials their (<= 0) budget constraints too.
        sysprune.record_constraints(trial, BUDGETS)
        return accuracy

    return objective


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=30)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: in memory)")
    args = parser.parse_args(argv)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=args.storage,
        direction="maximize",
        # TPE reads the constraints the pruner writes (Trial.set_constraint): no constraints_func needed.
        sampler=optuna.samplers.TPESampler(seed=args.seed, n_startup_trials=5),
        pruner=sysprune.ResourceBudgetPruner(BUDGETS, max_steps=args.steps),
    )
    study.optimize(make_objective(args.steps, args.seed), n_trials=args.n_trials)

    print(f"{'trial':>5}  {'state':<8}  {'value':>6}  reason")
    for t in study.trials:
        value = "" if t.value is None else f"{t.value:.3f}"
        print(f"{t.number:>5}  {t.state.name:<8}  {value:>6}  {t.user_attrs.get('prune_reason', '')}")
    n_budget = sum(1 for t in study.trials if t.user_attrs.get("prune_detail", {}).get("rule") == "budget")
    print(f"pruned for a budget: {n_budget} of {len(study.trials)} trials")
    try:
        best = study.best_trial
    except ValueError:
        print("best feasible trial: none (every completed trial is over budget)")
    else:
        print(f"best feasible trial: #{best.number} value={best.value:.4f} params={best.params}")


if __name__ == "__main__":
    main()
