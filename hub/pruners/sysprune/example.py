"""The OptunaHub package's example: an MLP on scikit-learn's digits, pruned when its model is over 120 kB."""

from __future__ import annotations

import os

import optuna
import optunahub
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

mod = optunahub.load_local_module("pruners/sysprune", registry_root=os.path.join(os.path.dirname(__file__), "..", ".."))
X, y = load_digits(return_X_y=True)
X_train, X_val, y_train, y_val = train_test_split(X / 16.0, y, test_size=0.25, random_state=0)


def objective(trial: optuna.Trial) -> float:
    width = trial.suggest_int("width", 4, 256, log=True)
    model = MLPClassifier(hidden_layer_sizes=(width,), random_state=0)
    meter = mod.measure(model=model, batch=X_val[:256])
    accuracy = 0.0
    for step in range(5):
        model.partial_fit(X_train, y_train, classes=list(range(10)))
        accuracy = float(model.score(X_val, y_val))
        mod.report(trial, step, accuracy, meter.sample(structural=step in (0, 4)))
        if mod.should_prune(trial):
            raise optuna.TrialPruned()
    return accuracy


if __name__ == "__main__":
    pruner = mod.ResourceBudgetPruner({"model_bytes": 120_000})
    study = optuna.create_study(direction="maximize", pruner=pruner, sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, n_trials=15)
    print(study.best_trial.number, study.best_trial.value, study.best_trial.params)
