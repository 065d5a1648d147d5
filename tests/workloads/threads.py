"""A model that reports the native thread pools its trial process runs with: at each step it multiplies two
matrices (OpenBLAS, as any numpy model does) and appends to ``out`` (a FixedParam path) the BLAS pools' sizes and
the process's thread count right after. Used through the dotted-path model plugin mechanism."""

from __future__ import annotations

import json
import os

import numpy as np

from sysprune.models._base import Trainer
from sysprune.models._space import FixedParam

NAME = "tests.workloads.threads"
INPUTS = frozenset({"tabular", "image"})
SPACE = {"out": FixedParam("")}


class _Threads(Trainer):
    def __init__(self, params: dict) -> None:
        self.out = str(params["out"])

    def train_step(self, step: int) -> dict[str, float]:
        from threadpoolctl import threadpool_info

        a = np.ones((256, 256))
        float((a @ a).sum())  # a BLAS call: a pool of more than one thread wakes its threads here
        seen = {
            "step": step,
            "blas": sorted({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}),
            "os_threads": len(os.listdir("/proc/self/task")),
        }
        with open(self.out, "a") as f:
            f.write(json.dumps(seen) + "\n")
        return {"train_loss": 1.0 / (step + 1)}

    def evaluate(self) -> dict[str, float | None]:
        return {"val_accuracy": 0.5, "val_loss": None}

    def infer(self, X):
        return X.sum()

    def size(self) -> dict[str, float]:
        return {"n_params": 1.0, "model_bytes": 8.0}


def create(params: dict, data, *, seed: int) -> Trainer:
    return _Threads(params)
