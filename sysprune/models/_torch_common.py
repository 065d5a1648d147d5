"""What the torch model families share: parameter checks, a step-wise trainer, and size/inference helpers.

Imports torch at module level, so only the model modules' ``create`` functions import this module.

The trainer runs on CUDA when ``torch.cuda.is_available()`` and on the CPU otherwise; it never sets thread counts
(the trial process pins them). Training is deterministic from the seed: the weights come from ``torch.manual_seed``,
the epoch order from a numpy ``Generator``, and dropout from a torch RNG state that the trainer keeps for itself
(restored before and saved after each step), so two trainers in one process do not disturb each other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from sysprune.datasets import Dataset
from sysprune.models._space import Param, fill_params
from sysprune._validation import Constraint
from sysprune.models._base import (
    TORCH_CONSTRAINTS,
    DryRun,
    EpochStart,
    Trainer,
    check_kind,
    check_model_params,
    timed_epoch_start,
)
from sysprune.metrics._measure import model_size

#: Rows per forward pass when scoring the validation split (memory stays bounded on large splits).
EVAL_BATCH = 1024
#: The hard limits every torch family shares (a family adds its own: ``CONSTRAINTS`` of its module).
CONSTRAINTS: dict[str, Constraint] = TORCH_CONSTRAINTS


def create_trainer(
    model: str,
    inputs: frozenset[str],
    space: Mapping[str, Param],
    params: Mapping[str, Any],
    data: Dataset,
    *,
    seed: int,
    constraints: Mapping[str, Constraint],
    build: Callable[[Dataset, dict[str, Any]], nn.Module],
) -> "TorchTrainer":
    """What every torch family's ``create`` does: fill ``params`` and check them against the family's declared
    ``constraints`` and the shared :data:`CONSTRAINTS` (batch size, dropout, lr, weight decay), seed torch, build
    the net with ``build(data, params)`` and wrap it in a :class:`TorchTrainer`."""
    p = fill_params(params, space, model)
    check_kind(data, inputs, model)
    p = check_model_params(model, {**constraints, **CONSTRAINTS}, p)
    device = pick_device()
    seeded(seed, device)
    net = build(data, p)
    return TorchTrainer(
        net, data, lr=p["lr"], weight_decay=p["weight_decay"], batch_size=p["batch_size"], seed=seed, device=device
    )


def pick_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


class TorchTrainer(Trainer):
    """Mini-batch AdamW on cross-entropy, one epoch per step, over (possibly memory-mapped) numpy arrays."""

    def __init__(
        self,
        net: nn.Module,
        data: Dataset,
        *,
        lr: float,
        weight_decay: float,
        batch_size: int,
        seed: int,
        device: torch.device,
    ) -> None:
        self.net = net.to(device)
        self.data = data
        self.batch_size = int(batch_size)
        self.device = device
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=lr, weight_decay=weight_decay)
        self._order_rng = np.random.default_rng(seed)
        self._cpu_rng = torch.get_rng_state()
        self._cuda_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        self._started: EpochStart | None = None  # step 0 begun by dry_run
        self.net.train()

    # -- Trainer interface ----------------------------------------------------------------------------------------

    def train_step(self, step: int) -> dict[str, float]:
        """One epoch over the training split in a fresh random order; ``train_loss`` is the mean batch loss
        weighted by batch size (each batch's loss is taken before its update). After :meth:`dry_run`, step 0
        goes on from the batch it stopped at."""
        order, at, total, count = self._started or (self._order_rng.permutation(len(self.data.y_train)), 0, 0.0, 0)
        self._started = None
        self._restore_rng()
        self.net.train()
        for start in range(at, len(order), self.batch_size):
            total, count = self._train_batch(order[start : start + self.batch_size], total, count)
        self._save_rng()
        return {"train_loss": total / max(count, 1)}

    def dry_run(self, batches: int) -> DryRun:
        """The first ``batches`` mini-batches of step 0, each timed (CPU and wall), then one validation chunk of
        :data:`EVAL_BATCH` rows (scored, not kept); ``train_step(0)`` goes on from the next batch."""
        if self._started is not None:
            raise RuntimeError("dry_run: step 0 was begun already")
        order = self._order_rng.permutation(len(self.data.y_train))
        self._restore_rng()
        self.net.train()
        dry, self._started = timed_epoch_start(
            self._train_batch,
            order,
            self.batch_size,
            batches,
            lambda rows: self._score(0, rows),  # eval mode, no dropout: draws nothing from the RNG saved below
            EVAL_BATCH,
            len(self.data.y_val),
        )
        self._save_rng()
        return dry

    def _train_batch(self, idx: np.ndarray, total: float, count: int) -> tuple[float, int]:
        xb, yb = self._tensors(self.data.X_train[idx], self.data.y_train[idx])
        loss = F.cross_entropy(self.net(xb), yb)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return total + loss.item() * len(idx), count + len(idx)

    def evaluate(self) -> dict[str, float]:
        """Accuracy and mean cross-entropy on the validation split."""
        n = len(self.data.y_val)
        loss_sum, correct = self._score(0, n)
        n = max(n, 1)
        return {"val_accuracy": correct / n, "val_loss": loss_sum / n}

    def _score(self, first: int, end: int) -> tuple[float, int]:
        """Summed cross-entropy and correct predictions over validation rows ``first .. end - 1``."""
        X, y = self.data.X_val, self.data.y_val
        loss_sum, correct = 0.0, 0
        with self._eval_mode():
            for start in range(first, end, EVAL_BATCH):
                stop = min(start + EVAL_BATCH, end)
                xb, yb = self._tensors(X[start:stop], y[start:stop])
                logits = self.net(xb)
                loss_sum += F.cross_entropy(logits, yb, reduction="sum").item()
                correct += int((logits.argmax(dim=1) == yb).sum().item())
        return loss_sum, correct

    def infer(self, X: np.ndarray) -> np.ndarray:
        """Predicted classes of one batch (a full forward pass in eval + inference mode)."""
        with self._eval_mode():
            xb = as_tensor(X, np.float32).to(self.device)
            return self.net(xb).argmax(dim=1).cpu().numpy()

    def size(self) -> dict[str, float]:
        """Trainable parameters and the bytes of ``torch.save(state_dict)`` (one definition:
        :func:`sysprune.metrics._measure.model_size`, which ``sysprune.measure`` uses too)."""

        return {k: float(v) for k, v in model_size(self.net).items() if v is not None}

    def gpu_mem_mb(self) -> float | None:
        """Peak CUDA memory allocated in this process (MiB), None on the CPU."""
        if self.device.type != "cuda":
            return None
        return torch.cuda.max_memory_allocated(self.device) / 2**20

    # -- helpers --------------------------------------------------------------------------------------------------

    def _tensors(self, X: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        xb, yb = as_tensor(X, np.float32), as_tensor(y, np.int64)
        return xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True)

    def _restore_rng(self) -> None:
        torch.set_rng_state(self._cpu_rng)
        if self._cuda_rng is not None:
            torch.cuda.set_rng_state(self._cuda_rng, self.device)

    def _save_rng(self) -> None:
        self._cpu_rng = torch.get_rng_state()
        if self._cuda_rng is not None:
            self._cuda_rng = torch.cuda.get_rng_state(self.device)

    def _eval_mode(self) -> "_EvalMode":
        return _EvalMode(self.net)


class _EvalMode:
    """``with``: the net in eval mode under ``torch.inference_mode``; the previous train/eval mode is restored."""

    def __init__(self, net: nn.Module) -> None:
        self.net = net
        self._inference = torch.inference_mode()

    def __enter__(self) -> None:
        self._was_training = self.net.training
        self.net.eval()
        self._inference.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._inference.__exit__(*exc)
        self.net.train(self._was_training)


def as_tensor(X: np.ndarray, dtype: type[np.generic]) -> torch.Tensor:
    """A CPU tensor of ``X`` (a read-only memory-mapped slice is copied: torch wants writable memory)."""
    array = np.ascontiguousarray(X, dtype=dtype)
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array)


def seeded(seed: int, device: torch.device) -> None:
    """Seed torch's global generators before building a net (weights are then a function of ``seed``)."""
    torch.manual_seed(seed)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.cuda.reset_peak_memory_stats(device)


def flat_features(input_shape: tuple[int, ...]) -> int:
    """Number of features of one sample once flattened."""
    return int(math.prod(input_shape))
