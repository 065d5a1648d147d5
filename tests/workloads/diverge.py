"""A synthetic model family whose objective turns NaN at step ``nan_at`` (a diverged model), for the tests of
failure reasons. ``step_s`` sleeps per step (a trial long enough to be interrupted)."""

from __future__ import annotations

import time

from sysprune.models._space import FixedParam
from sysprune.models._base import Trainer

NAME = "tests.workloads.diverge"
INPUTS = frozenset({"tabular", "image"})
SPACE = {"nan_at": FixedParam(-1), "step_s": FixedParam(0.0)}


class _Diverge(Trainer):
    def __init__(self, params: dict) -> None:
        self.p = params
        self.step = -1

    def train_step(self, step: int) -> dict[str, float]:
        self.step = step
        time.sleep(self.p["step_s"])
        return {"train_loss": float("nan") if step >= self.p["nan_at"] >= 0 else 1.0 / (step + 1)}

    def evaluate(self) -> dict[str, float]:
        return {"val_accuracy": float("nan") if self.step >= self.p["nan_at"] >= 0 else 0.5, "val_loss": 1.0}

    def infer(self, X):
        return X.sum()

    def size(self) -> dict[str, float]:
        return {"n_params": 1.0, "model_bytes": 8.0}


def create(params: dict, data, *, seed: int) -> Trainer:
    return _Diverge(params)
