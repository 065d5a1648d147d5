"""A synthetic model family that misbehaves on request, for the trial process's caps and death reports.

``spin_ms`` of CPU per step; a memory spike of ``spike_mb`` MiB allocated and freed inside step ``spike_at`` (so
the RSS at the end of the step is back down, only the peak remembers it); a spike of ``probe_spike_mb`` inside the
latency probe after the last step; at step ``crash_at``, ``crash`` = "segv" | "kill" | "exit" after writing a line
to stderr ("probe_kill": SIGKILL in the latency probe once ``crash_at`` steps are trained); ``probe_every`` is declared on the trainer (a model whose structure changes)."""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np

from sysprune.models._space import FixedParam
from sysprune.models._base import Trainer

NAME = "tests.workloads.faults"
INPUTS = frozenset({"tabular", "image"})
SPACE = {
    "spin_ms": FixedParam(1),
    "spike_mb": FixedParam(0),
    "spike_at": FixedParam(-1),
    "probe_spike_mb": FixedParam(0),
    "crash": FixedParam("none"),
    "crash_at": FixedParam(-1),
    "probe_every": FixedParam(0),
    "steps": FixedParam(0),
}


def _touch(mb: float) -> float:
    buf = np.ones(int(mb * 2**20 // 8))  # touched: resident, then freed (a large array is returned to the OS)
    return float(buf[-1])


class _Faults(Trainer):
    def __init__(self, params: dict) -> None:
        self.p = params
        self.trained = 0
        self.probe_every = params["probe_every"]

    def train_step(self, step: int) -> dict[str, float]:
        if step == self.p["crash_at"]:
            print(f"faults: crashing on purpose ({self.p['crash']}) at step {step}", file=sys.stderr, flush=True)
            if self.p["crash"] == "segv":
                os.kill(os.getpid(), signal.SIGSEGV)
            elif self.p["crash"] == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif self.p["crash"] == "exit":
                os._exit(3)
        if step == self.p["spike_at"]:
            _touch(self.p["spike_mb"])
        end = time.process_time() + self.p["spin_ms"] / 1e3
        while time.process_time() < end:
            pass
        self.trained += 1
        return {"train_loss": 1.0 / (step + 1)}

    def evaluate(self) -> dict[str, float]:
        return {"val_accuracy": 0.5}

    def infer(self, X):
        if self.p["crash"] == "probe_kill" and self.trained == self.p["crash_at"]:  # in the probe after that many steps
            os.kill(os.getpid(), signal.SIGKILL)
        if self.p["probe_spike_mb"] and self.trained == self.p["steps"]:
            _touch(self.p["probe_spike_mb"])
        return X.sum()

    def size(self) -> dict[str, float]:
        return {"n_params": 1.0, "model_bytes": 8.0}


def create(params: dict, data, *, seed: int) -> Trainer:
    return _Faults({**{k: v.value for k, v in SPACE.items()}, **params})
