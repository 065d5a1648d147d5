"""A synthetic model family for measuring the measurer: it holds ``mb`` MiB of touched memory from the first step
and burns ``spin_ms`` of CPU per step. Used by the tests through the dotted-path model plugin mechanism."""

from __future__ import annotations

import time

import numpy as np

from sysprune.models._space import FixedParam
from sysprune.models._base import Trainer

NAME = "tests.workloads.alloc"
INPUTS = frozenset({"tabular", "image"})
SPACE = {"mb": FixedParam(10), "spin_ms": FixedParam(20.0), "fail_at": FixedParam(-1)}  # spin_ms: any real number of ms


class _Alloc(Trainer):
    def __init__(self, params: dict, data) -> None:
        self.p = params
        self.data = data
        self.buf = None

    def train_step(self, step: int) -> dict[str, float]:
        if step == self.p["fail_at"]:
            raise RuntimeError(f"planned failure at step {step}")
        if self.buf is None:
            self.buf = np.ones(int(self.p["mb"] * 2**20 // 8))  # touched: resident, not just reserved
        end = time.process_time() + self.p["spin_ms"] / 1e3
        x = 0
        while time.process_time() < end:
            x += 1
        return {"train_loss": 1.0 / (step + 1)}

    def evaluate(self) -> dict[str, float]:
        return {"val_accuracy": 0.5, "val_loss": None}

    def infer(self, X):
        return X.sum()

    def size(self) -> dict[str, float]:
        return {"n_params": 1.0, "model_bytes": float(self.buf.nbytes if self.buf is not None else 0)}


def create(params: dict, data, *, seed: int) -> Trainer:
    return _Alloc(params, data)
