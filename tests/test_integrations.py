"""Integrations: a PyTorch Lightning model pruned on a budget by :class:`sysprune.integration.SyspruneCallback`, and
the pruners loaded as an OptunaHub package with ``optunahub.load_local_module``."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from sklearn.datasets import load_digits

import sysprune
from tests._require import require

torch = require("torch", "torch")
pl = require("pytorch_lightning", "lightning")

from torch.utils.data import DataLoader, TensorDataset  # noqa: E402 - after the extras are known to be there

from sysprune.integration import SyspruneCallback  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BUDGET = {"n_params": 2000.0}


class Tiny(pl.LightningModule):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(64, width), torch.nn.ReLU(), torch.nn.Linear(width, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, _):
        x, y = batch
        return torch.nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch, _):
        x, y = batch
        self.log("val_acc", (self(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def _loaders():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    train, val = TensorDataset(X[:1200], y[:1200]), TensorDataset(X[1200:], y[1200:])
    return DataLoader(train, batch_size=128, shuffle=True), DataLoader(val, batch_size=512), X[1200:1456]


def test_a_lightning_model_over_its_budget_is_pruned_before_training():
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    torch.manual_seed(0)
    train, val, probe = _loaders()
    study = optuna.create_study(direction="maximize", pruner=sysprune.ResourceBudgetPruner(BUDGET))
    epochs = 3
    fitted: list[int] = []

    def objective(trial):
        width = trial.suggest_categorical("width", [8, 256])  # 8: 610 parameters; 256: 19210, over 2000
        trainer = pl.Trainer(
            max_epochs=epochs,
            callbacks=[SyspruneCallback(trial, "val_acc", batch=probe, repeats=1)],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
        )
        fitted.append(trial.number)
        trainer.fit(Tiny(width), train, val)
        return trainer.callback_metrics["val_acc"].item()

    study.enqueue_trial({"width": 8})
    study.enqueue_trial({"width": 256})
    study.optimize(objective, n_trials=2)
    small, big = study.trials
    assert small.state == TrialState.COMPLETE and small.value > 0.2  # it learned (chance: 0.1)
    assert big.state == TrialState.PRUNED
    assert "n_params" in big.user_attrs["prune_reason"] and big.user_attrs["prune_detail"]["step"] == -1
    steps = sysprune.load_step_metrics(study)
    big_steps = steps[steps.trial_number == big.number]
    assert big_steps.step.tolist() == [-1] and big_steps.n_params.iloc[0] == 19210  # pruned before any epoch
    small_steps = steps[steps.trial_number == small.number].set_index("step")
    assert small_steps.index.tolist() == [-1, 0, 1, 2]
    assert small_steps.n_params[-1] == 610 and small_steps.n_params[2] == 610  # structural: first and last epoch
    assert np.isnan(small_steps.n_params[0])  # not probed in between: missing, not 0
    assert (small_steps.cpu_s.loc[0:].diff().dropna() > 0).all()  # measured per epoch, cumulative
    assert list(small.intermediate_values) == [0, 1, 2]


def test_a_monitor_that_was_not_logged_is_one_clear_error():
    train, val, probe = _loaders()
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    trainer = pl.Trainer(
        max_epochs=1,
        callbacks=[SyspruneCallback(trial, "val_accuracy")],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        limit_train_batches=1,
    )
    with pytest.raises(ValueError, match=r"monitor 'val_accuracy' was not logged .*; logged: val_acc"):
        trainer.fit(Tiny(8), train, val)


def test_the_pruners_load_as_an_optunahub_package():
    optunahub = require("optunahub", "optunahub")
    mod = optunahub.load_local_module("pruners/sysprune", registry_root=str(REPO / "hub"))
    assert mod.ResourceBudgetPruner is sysprune.ResourceBudgetPruner and mod.measure is sysprune.measure
    assert set(mod.__all__) <= set(dir(mod))
    readme = (REPO / "hub" / "pruners" / "sysprune" / "README.md").read_text()
    front = readme.split("---")[1]  # the registry's front matter: these keys, and the pruner tag for pruners/
    assert all(f"\n{key}:" in front for key in ("author", "title", "description", "tags", "optuna_versions", "license"))
    assert "[pruner," in front and (REPO / "hub" / "pruners" / "sysprune" / "LICENSE").is_file()

    def objective(trial):
        width = trial.suggest_categorical("width", [2, 64])  # n_params: 6 and 192
        net = torch.nn.Linear(2, width)
        meter = mod.measure(model=net, batch=torch.zeros(4, 2), repeats=1)
        mod.report(trial, mod.PRETRAIN_STEP, None, meter.sample())
        if mod.should_prune(trial):
            raise optuna.TrialPruned()
        mod.report(trial, 0, 1.0, meter.sample())
        return 1.0

    study = optuna.create_study(direction="maximize", pruner=mod.ResourceBudgetPruner({"n_params": 100}))
    study.enqueue_trial({"width": 2})
    study.enqueue_trial({"width": 64})
    study.optimize(objective, n_trials=2)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.PRUNED]
