"""What every model family provides: a default search space (plain data) and a step-wise trainer.

A model family is one module in ``sysprune/models/`` with three top-level names and no heavy import at module
level (study files are validated without importing torch):

    NAME: str                       registry name used in study files (``model = "torch_mlp"``)
    INPUTS: frozenset[str]          dataset kinds it accepts: {"tabular", "image"}
    SPACE: dict[str, Param]         default search space; a study file may override or fix any entry
    create(params, data, *, seed) -> Trainer

The trial process drives a Trainer one step (epoch) at a time; it measures time, CPU and memory from outside
and calls ``infer`` for the latency probe, so trainers only train, evaluate and describe themselves.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class Trainer(ABC):
    """One model being trained on one dataset with one set of hyperparameters."""

    @abstractmethod
    def train_step(self, step: int) -> dict[str, float]:
        """Train one step (one epoch over the training split); return at least ``{"train_loss": ...}``."""

    @abstractmethod
    def evaluate(self) -> dict[str, float]:
        """Score the validation split: ``{"val_accuracy": ..., "val_loss": ...}``."""

    @abstractmethod
    def infer(self, X: np.ndarray) -> Any:
        """Predict one batch (the latency probe times this call); must do the full forward pass."""

    @abstractmethod
    def size(self) -> dict[str, float]:
        """``{"n_params": ..., "model_bytes": ...}`` (bytes of the serialised model)."""

    def gpu_mem_mb(self) -> float | None:
        """Peak CUDA memory of this trial in MiB, or None when no GPU is used."""
        return None
