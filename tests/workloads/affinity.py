"""A synthetic model family that reports where it may run: ``val_accuracy`` = the lowest core of the trial
process's CPU affinity, ``val_loss`` = how many cores it has. For the worker tests (CPU sets)."""

from __future__ import annotations

import os

from tests.workloads import alloc

NAME = "tests.workloads.affinity"
INPUTS = alloc.INPUTS
SPACE = alloc.SPACE


class _Where(alloc._Alloc):
    def evaluate(self) -> dict[str, float]:
        cores = os.sched_getaffinity(0)
        return {"val_accuracy": float(min(cores)), "val_loss": float(len(cores))}


def create(params: dict, data, *, seed: int) -> _Where:
    return _Where(params, data)
