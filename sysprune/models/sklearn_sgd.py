"""``sklearn_sgd``: a linear classifier (scikit-learn ``SGDClassifier``) trained with ``partial_fit``.

Reads tabular data and images (flattened). One step is one epoch: the training split in a fresh random order, fed
to ``partial_fit`` in mini-batches of ``batch_size`` rows (the batch size changes the per-call overhead, not the
per-sample SGD updates). Multi-class problems are one-vs-rest, as in scikit-learn.

``train_loss`` is the progressive surrogate loss of the step: each batch is scored with the chosen loss (hinge,
log or modified Huber, averaged over samples and one-vs-rest classes, regularisation excluded) just before the
model updates on it, like a torch training loss. ``val_loss`` is the log loss of ``predict_proba`` where the loss
provides probabilities (``log_loss``, ``modified_huber``) and missing (None) for ``hinge``.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

from sysprune._validation import Constraint, Integer, Real, Text
from sysprune.datasets import Dataset
from sysprune.models._space import CategoricalParam, FloatParam, Param, fill_params
from sysprune.models._base import DryRun, EpochStart, Trainer, check_kind, check_model_params, timed_epoch_start
from sysprune.models._registry import register_model

NAME = "sklearn_sgd"
INPUTS: frozenset[str] = frozenset({"tabular", "image"})
LOSSES: tuple[str, ...] = ("hinge", "log_loss", "modified_huber")
PENALTIES: tuple[str, ...] = ("l2", "l1", "elasticnet")
LEARNING_RATES: tuple[str, ...] = ("optimal", "invscaling", "constant")
#: Defaults are used for parameters a direct ``create`` call leaves out (a study passes every entry).
SPACE: dict[str, Param] = {
    "loss": CategoricalParam(LOSSES, default="log_loss"),
    "penalty": CategoricalParam(PENALTIES, default="l2"),
    "alpha": FloatParam(1e-6, 1e-2, log=True, default=1e-3),
    "learning_rate": CategoricalParam(LEARNING_RATES, default="invscaling"),
    "eta0": FloatParam(1e-4, 1e-1, log=True, default=1e-2),
    "batch_size": CategoricalParam((64, 256, 1024), default=256),
}
#: Hard limits of the hyperparameters (what ``SGDClassifier`` accepts), declared once.
CONSTRAINTS: dict[str, Constraint] = {
    "loss": Text(LOSSES),
    "penalty": Text(PENALTIES),
    "alpha": Real(0.0, low_open=True),
    "learning_rate": Text(LEARNING_RATES),
    "eta0": Real(0.0, low_open=True),
    "batch_size": Integer(1, 1_000_000),
}
#: Rows per call when scoring the validation split.
EVAL_BATCH = 4096
#: Probabilities are floored here before the log loss (the floor sysprune's recorded studies used; scikit-learn's
#: own is float64's eps, 2.2e-16, which modified_huber's exact zeros would hit).
_PROBA_EPS = 1e-15


def create(params: dict[str, Any], data: Dataset, *, seed: int) -> Trainer:
    """An SGDClassifier trainer for ``data`` with hyperparameters ``params`` (missing ones from the space's defaults)."""
    p = _check(params, data)
    from sklearn.linear_model import SGDClassifier

    model = SGDClassifier(
        loss=p["loss"],
        penalty=p["penalty"],
        alpha=float(p["alpha"]),
        learning_rate=p["learning_rate"],
        eta0=float(p["eta0"]),
        random_state=seed,
    )
    return SGDTrainer(model, data, batch_size=int(p["batch_size"]), seed=seed)


def _check(params: dict[str, Any], data: Dataset) -> dict[str, Any]:
    p = fill_params(params, SPACE, NAME)
    check_kind(data, INPUTS, NAME)
    return check_model_params(NAME, CONSTRAINTS, p)


def _flat(X: np.ndarray) -> np.ndarray:
    """Rows flattened to 2-D float64 (what SGDClassifier computes in)."""
    return np.asarray(X, dtype=np.float64).reshape(len(X), -1)


def surrogate_loss(loss: str, scores: np.ndarray, y: np.ndarray, n_classes: int) -> float:
    """Mean ``loss`` of decision scores against labels, over samples and one-vs-rest columns (binary: one)."""
    if scores.ndim == 1:
        signs = np.where(y == 1, 1.0, -1.0)
    else:
        signs = np.where(y[:, None] == np.arange(n_classes)[None, :], 1.0, -1.0)
    z = signs * scores
    if loss == "hinge":
        values = np.maximum(0.0, 1.0 - z)
    elif loss == "log_loss":
        values = np.logaddexp(0.0, -z)
    else:  # modified_huber
        values = np.where(z >= -1.0, np.maximum(0.0, 1.0 - z) ** 2, -4.0 * z)
    return float(values.mean())


class SGDTrainer(Trainer):
    """Step-wise ``partial_fit`` over shuffled mini-batches of a (possibly memory-mapped) dataset."""

    def __init__(self, model: Any, data: Dataset, *, batch_size: int, seed: int) -> None:
        self.model = model
        self.data = data
        self.batch_size = batch_size
        self.classes = np.arange(data.n_classes)
        self._rng = np.random.default_rng(seed)
        self._fitted = False
        self._started: EpochStart | None = None  # step 0 begun by dry_run

    def train_step(self, step: int) -> dict[str, float]:
        """One epoch of ``partial_fit`` calls; ``train_loss`` is the progressive surrogate loss (see module doc).
        After :meth:`dry_run`, step 0 goes on from the batch it stopped at."""
        order, at, total, count = self._started or (self._rng.permutation(len(self.data.y_train)), 0, 0.0, 0)
        self._started = None
        for start in range(at, len(order), self.batch_size):
            total, count = self._fit_batch(order[start : start + self.batch_size], total, count)
        if count == 0:  # a one-batch training split on the first step: score it after the update
            X, y = self.data.X_train, self.data.y_train
            xb, yb = _flat(X), np.asarray(y)
            total = surrogate_loss(self.model.loss, self.model.decision_function(xb), yb, len(self.classes))
            count = 1
        return {"train_loss": total / count}

    def _fit_batch(self, idx: np.ndarray, total: float, count: int) -> tuple[float, int]:
        xb, yb = _flat(self.data.X_train[idx]), np.asarray(self.data.y_train[idx])
        if self._fitted:
            scores = self.model.decision_function(xb)
            total += surrogate_loss(self.model.loss, scores, yb, len(self.classes)) * len(idx)
            count += len(idx)
        self.model.partial_fit(xb, yb, classes=self.classes)
        self._fitted = True
        return total, count

    def dry_run(self, batches: int) -> DryRun:
        """The first ``batches`` ``partial_fit`` calls of step 0, each timed, then one :data:`EVAL_BATCH`-row chunk
        of the validation split scored (not kept); ``train_step(0)`` goes on from the next batch."""
        if self._started is not None:
            raise RuntimeError("dry_run: step 0 was begun already")
        order = self._rng.permutation(len(self.data.y_train))
        dry, self._started = timed_epoch_start(
            self._fit_batch, order, self.batch_size, batches, self._score_rows, EVAL_BATCH, len(self.data.y_val)
        )
        return dry

    def _score_rows(self, rows: int) -> None:
        """Predict (and predict_proba, where the loss has it) the first ``rows`` validation rows, once fitted."""
        if self._fitted:
            xb = _flat(self.data.X_val[:rows])
            self.model.predict(xb)
            if self.model.loss in ("log_loss", "modified_huber"):
                self.model.predict_proba(xb)

    def evaluate(self) -> dict[str, float | None]:
        """Accuracy on the validation split; log loss of ``predict_proba`` if the loss has one, else None."""
        from sklearn.metrics import log_loss

        X, y = self.data.X_val, np.asarray(self.data.y_val)
        has_proba = self.model.loss in ("log_loss", "modified_huber")
        correct, nll = 0, 0.0
        for start in range(0, len(y), EVAL_BATCH):
            xb, yb = _flat(X[start : start + EVAL_BATCH]), y[start : start + EVAL_BATCH]
            correct += int((self.model.predict(xb) == yb).sum())
            if has_proba:
                proba = np.clip(self.model.predict_proba(xb), _PROBA_EPS, 1.0)
                nll += log_loss(yb, y_proba=proba, labels=self.classes, normalize=False)
        n = max(len(y), 1)
        return {"val_accuracy": correct / n, "val_loss": nll / n if has_proba else None}

    def infer(self, X: np.ndarray) -> np.ndarray:
        """Predicted classes of one batch."""
        return self.model.predict(_flat(X))

    def size(self) -> dict[str, float]:
        """Coefficients + intercepts, and the bytes of the pickled estimator."""
        n_params = self.model.coef_.size + self.model.intercept_.size if self._fitted else 0
        return {"n_params": float(n_params), "model_bytes": float(len(pickle.dumps(self.model)))}


register_model(NAME, create, space=SPACE, inputs=INPUTS, requires=("sklearn",), bounds=CONSTRAINTS)
