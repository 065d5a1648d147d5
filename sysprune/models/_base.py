"""The model interface (:class:`Trainer`, public as ``sysprune.Trainer``) and the checks families share.

A model family is a ``create(params, data, *, seed) -> Trainer`` function registered with its search space and
the data kinds it reads (``sysprune.register_model``; docs/extending.md). The trial process drives a Trainer one
step (epoch) at a time; it measures time, CPU and memory from outside and calls ``infer`` for the latency probe,
so trainers only train, evaluate and describe themselves.

A family declares the hard limits of its hyperparameters once, as constraints (``CONSTRAINTS``, a table of
:mod:`sysprune.constraints`), and ``create`` checks them with :func:`check_model_params`: a bad value reads
``torch_mlp: width: value 0 is invalid; valid: an integer >= 1``, as anywhere else in sysprune.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sysprune._validation import Constraint, Integer, Real, check_params

if TYPE_CHECKING:
    from sysprune.datasets import Dataset


@dataclass(frozen=True)
class DryRun:
    """What :meth:`Trainer.dry_run` measured: the CPU and wall seconds of each training mini-batch it ran, how many
    mini-batches one step has, and the cost of scoring ``eval_share`` of the validation split once."""

    batch_cpu_s: tuple[float, ...]
    batch_wall_s: tuple[float, ...]
    batches_per_step: int
    eval_cpu_s: float
    eval_wall_s: float
    eval_share: float


#: A step begun by a dry run: its order of the training rows, the position of the next batch, the loss sums so far.
EpochStart = tuple[np.ndarray, int, float, int]


def timed_epoch_start(
    fit_batch: Callable[[np.ndarray, float, int], tuple[float, int]],
    order: np.ndarray,
    batch_size: int,
    batches: int,
    score_val: Callable[[int], object],
    eval_rows: int,
    n_val: int,
) -> tuple[DryRun, EpochStart]:
    """What a built-in trainer's ``dry_run`` does: the first ``batches`` mini-batches of ``order`` through
    ``fit_batch(idx, loss_sum, count) -> (loss_sum, count)``, each timed on the CPU and wall clocks, then
    ``score_val(rows)`` on the first ``min(eval_rows, n_val)`` validation rows, timed; the :class:`DryRun` and where
    ``train_step(0)`` goes on from."""
    per_step = max(1, math.ceil(len(order) / batch_size))
    total, count = 0.0, 0
    cpu: list[float] = []
    wall: list[float] = []
    for b in range(min(int(batches), per_step)):
        c, w = time.process_time(), time.perf_counter()
        total, count = fit_batch(order[b * batch_size : (b + 1) * batch_size], total, count)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    rows = min(eval_rows, n_val)
    c, w = time.process_time(), time.perf_counter()
    if rows:
        score_val(rows)
    dry = DryRun(
        tuple(cpu),
        tuple(wall),
        per_step,
        time.process_time() - c,
        time.perf_counter() - w,
        rows / n_val if rows else 1.0,
    )
    return dry, (order, len(cpu) * batch_size, total, count)


class Trainer(ABC):
    """One model being trained on one dataset with one set of hyperparameters."""

    @abstractmethod
    def train_step(self, step: int) -> Mapping[str, float | None]:
        """Train one step (one epoch over the training split); return at least ``{"train_loss": ...}``."""

    @abstractmethod
    def evaluate(self) -> Mapping[str, float | None]:
        """Score the validation split: ``{"val_accuracy": ..., "val_loss": ...}``, plus any metric of one's own
        (registered with ``sysprune.register_metric``; None when it cannot be measured)."""

    @abstractmethod
    def infer(self, X: np.ndarray) -> Any:
        """Predict one batch (the latency probe times this call); must do the full forward pass."""

    @abstractmethod
    def size(self) -> Mapping[str, float]:
        """``{"n_params": ..., "model_bytes": ...}`` (bytes of the serialised model)."""

    def gpu_mem_mb(self) -> float | None:
        """Peak CUDA memory of this trial in MiB, or None when no GPU is used."""
        return None

    def dry_run(self, batches: int) -> DryRun | None:
        """Train the first ``batches`` mini-batches of step 0 now, timing each, and score one chunk of the
        validation split: the trial process asks for it at step -1, where a budget pruner predicts the trial's
        training time and memory from it. The batches are *not* repeated: the next ``train_step(0)`` goes on from
        there, so the trained model is the one it would have been. None (the default): the model cannot."""
        return None


#: The hard limits every torch family shares (a family adds its own: ``CONSTRAINTS`` of its module). Here, not in
#: ``_torch_common``, so that a study file is checked against them without importing torch.
TORCH_CONSTRAINTS: dict[str, Constraint] = {
    "batch_size": Integer(low=1, high=1_000_000),
    "dropout": Real(0.0, 0.99),
    "lr": Real(1e-8, 10.0),
    "weight_decay": Real(0.0, 10.0),
}


def check_kind(data: "Dataset", inputs: frozenset[str], model: str) -> None:
    """Raise ValueError if the model cannot read ``data``'s kind."""
    if data.kind not in inputs:
        raise ValueError(f"model {model} needs {'/'.join(sorted(inputs))} data; {data.name} is {data.kind}")


def check_model_params(model: str, constraints: Mapping[str, Constraint], params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` (one value per parameter of the space) with each declared ``constraints`` entry checked and
    normalised; :class:`~sysprune.exceptions.InvalidArgument` names the model, the parameter and the value."""
    return {**params, **check_params(model, constraints, params)}
