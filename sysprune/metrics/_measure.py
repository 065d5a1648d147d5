"""Measuring a model in the process that holds it: the latency probe, size, model memory — and
:func:`sysprune.measure`, which gives a plain Optuna objective the metric dict the sysprune runner records.

The runner's trial process (:mod:`sysprune.trial._process`) calls :func:`probe_trainer` for its structural metrics,
at the pre-training probe (step -1) and the last step (after the first step too when the pruner asks); :class:`Measurer` calls :func:`probe_model` on a torch
module or a scikit-learn estimator. Both time inference with :func:`latency_ms` and count memory with
:func:`model_mem_mb`: one definition of each metric.

Structural metrics (kind ``structural`` in :mod:`sysprune.metrics._registry`):

``infer_ms``
    per-sample latency: the median over ``repeats`` timed calls on one batch (after one untimed warm-up), divided
    by the batch size; ``infer_ms_lo`` / ``infer_ms_hi`` bound that median with a distribution-free ~95 %
    confidence interval from the repeats' order statistics (:func:`sysprune.metrics._interval.median_interval`).
``n_params``, ``model_bytes``
    trainable parameters and the bytes of the serialised model (``torch.save(state_dict)``; ``pickle`` of a
    scikit-learn estimator, whose parameters are its learned floating-point arrays: ``coef_``, ``coefs_``, ...).
``model_mem_mb``
    the memory (MiB) the model's tensors take while it trains: parameters and buffers, one gradient per trainable
    parameter, and the optimizer's per-parameter state (AdamW: two moments). Before the first step the optimizer
    has allocated nothing yet; its state is then counted from its kind (:data:`_STATE_TENSORS`), so the value at the
    pre-training probe equals the one after training. Activations are not included (they scale with the batch;
    ``peak_rss_mb`` measures them). For a scikit-learn estimator: its learned arrays (solver state not counted).
    Missing (None) for an optimizer whose state cannot be known before its first step, and for other models.

A scikit-learn estimator cannot be probed before it is fitted: its structural metrics are then missing (None).
"""

from __future__ import annotations

import os
import pickle
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from sysprune.metrics._interval import median_interval
from sysprune.metrics._monitor import ProcessMonitor, read_status_mb, reset_peak_rss

_MIB = float(2**20)

#: The structural metrics a probe returns (all None when the model cannot be probed yet).
STRUCTURAL = ("n_params", "model_bytes", "infer_ms", "infer_ms_lo", "infer_ms_hi", "model_mem_mb")

#: Per-parameter state tensors of torch optimizers, for counting their memory before their first step.
_STATE_TENSORS: dict[str, Callable[[Mapping[str, Any]], int]] = {
    "Adam": lambda g: 3 if g.get("amsgrad") else 2,
    "AdamW": lambda g: 3 if g.get("amsgrad") else 2,
    "Adamax": lambda g: 2,
    "NAdam": lambda g: 2,
    "RAdam": lambda g: 2,
    "Adadelta": lambda g: 2,
    "Adagrad": lambda g: 1,
    "RMSprop": lambda g: 1 + (g.get("momentum", 0) > 0) + bool(g.get("centered")),
    "SGD": lambda g: 1 if g.get("momentum", 0) > 0 else 0,
}


# ------------------------------------------------------------------------------------------------ pure helpers


def latency_ms(infer: Callable[[Any], Any], X: Any, repeats: int, *, warmup: int = 1) -> dict[str, float]:
    """Per-sample inference latency (ms) of ``infer(X)``: median of ``repeats`` timed calls after ``warmup``
    untimed ones, with its ~95 % confidence interval (``infer_ms``, ``infer_ms_lo``, ``infer_ms_hi``)."""
    n = len(X)
    for _ in range(warmup):
        infer(X)
    per_sample = []
    for _ in range(repeats):
        t = time.perf_counter()
        infer(X)
        per_sample.append((time.perf_counter() - t) * 1e3 / n)
    lo, hi, _ = median_interval(per_sample)
    return {"infer_ms": statistics.median(per_sample), "infer_ms_lo": lo, "infer_ms_hi": hi}


def _is_torch_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _learned_arrays(estimator: Any) -> list[Any]:
    """The learned floating-point arrays of a fitted scikit-learn estimator (public attributes ending in ``_``)."""
    import numpy as np

    out = []
    for name, value in vars(estimator).items():
        if name.startswith("_") or not name.endswith("_"):
            continue
        items = value if isinstance(value, (list, tuple)) else [value]
        out += [a for a in items if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating)]
    return out


def _is_fitted(estimator: Any) -> bool:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


def _tensor_bytes(t: Any) -> int:
    return t.numel() * t.element_size()


def torch_mem_bytes(net: Any, optimizer: Any = None) -> int | None:
    """Bytes of a torch module's parameters, buffers, gradients and optimizer state (see the module doc)."""
    params = list(net.parameters())
    total = sum(_tensor_bytes(p) for p in params) + sum(_tensor_bytes(b) for b in net.buffers())
    trainable = [p for p in params if p.requires_grad]
    total += sum(_tensor_bytes(p) for p in trainable)  # one gradient each
    if optimizer is None:
        return total
    state = getattr(optimizer, "state", {})
    if any(state.get(p) for p in trainable):  # allocated: count the tensors shaped like their parameter
        total += sum(
            _tensor_bytes(t)
            for p in trainable
            for t in state.get(p, {}).values()
            if hasattr(t, "shape") and t.shape == p.shape
        )
        return total
    for group in getattr(optimizer, "param_groups", []):
        per = _STATE_TENSORS.get(type(optimizer).__name__)
        if per is None:
            return None
        total += per(group) * sum(_tensor_bytes(p) for p in group["params"] if p.requires_grad)
    return total


def model_mem_mb(model: Any, optimizer: Any = None) -> float | None:
    """``model_mem_mb`` of a torch module (with its optimizer) or a fitted scikit-learn estimator; else None."""
    if _is_torch_module(model):
        b = torch_mem_bytes(model, optimizer)
        return None if b is None else b / _MIB
    if hasattr(model, "get_params") and _is_fitted(model):
        return sum(a.nbytes for a in _learned_arrays(model)) / _MIB
    return None


def model_size(model: Any) -> dict[str, float | None]:
    """``n_params`` and ``model_bytes`` of a torch module or a scikit-learn estimator (None if not fitted)."""
    if _is_torch_module(model):
        import io

        import torch

        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        n = sum(p.numel() for p in model.parameters() if p.requires_grad)
        return {"n_params": float(n), "model_bytes": float(buffer.getbuffer().nbytes)}
    if hasattr(model, "get_params"):
        if not _is_fitted(model):
            return {"n_params": None, "model_bytes": None}
        return {
            "n_params": float(sum(a.size for a in _learned_arrays(model))),
            "model_bytes": float(len(pickle.dumps(model))),
        }
    raise TypeError(f"model must be a torch.nn.Module or a scikit-learn estimator, but got {type(model).__name__}.")


def _torch_infer(net: Any) -> Callable[[Any], Any]:
    import torch

    param = next(net.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")

    def infer(X: Any) -> Any:
        was_training = net.training
        net.eval()
        try:
            with torch.inference_mode():
                xb = (
                    X.to(device)
                    if isinstance(X, torch.Tensor)
                    else torch.as_tensor(X, dtype=torch.float32, device=device)
                )
                return net(xb)
        finally:
            net.train(was_training)

    return infer


def _not_fitted_error() -> type[BaseException]:
    try:
        from sklearn.exceptions import NotFittedError
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return ()  # type: ignore[return-value]
    return NotFittedError


def probe_model(model: Any, batch: Any, repeats: int, *, optimizer: Any = None) -> dict[str, float | None]:
    """The structural metrics of a torch module or a scikit-learn estimator (``batch`` None: no latency)."""
    out: dict[str, float | None] = dict.fromkeys(STRUCTURAL)
    if not _is_torch_module(model) and hasattr(model, "get_params") and not _is_fitted(model):
        return out  # an estimator cannot be probed before it is fitted
    out.update(model_size(model))
    out["model_mem_mb"] = model_mem_mb(model, optimizer)
    if batch is not None:
        infer = _torch_infer(model) if _is_torch_module(model) else model.predict
        out.update(latency_ms(infer, batch, repeats))
    return out


def probe_trainer(trainer: Any, batch: Any, repeats: int, *, warmup: int = 1) -> dict[str, float | None]:
    """The structural metrics of a sysprune Trainer (its own ``size()`` and ``infer``; memory from the torch
    module and optimizer it holds as ``.net`` / ``.optimizer``, or the estimator it holds as ``.model``).
    All None when the model cannot be probed yet (a scikit-learn estimator before its first step)."""
    try:
        latency = latency_ms(trainer.infer, batch, repeats, warmup=warmup)
    except _not_fitted_error():
        return dict.fromkeys(STRUCTURAL)
    out: dict[str, float | None] = dict(trainer.size())
    out.update(latency)
    net = getattr(trainer, "net", None)
    model = net if net is not None else getattr(trainer, "model", None)
    out["model_mem_mb"] = None if model is None else model_mem_mb(model, getattr(trainer, "optimizer", None))
    return out


# ---------------------------------------------------------------------------------------------- for plain Optuna


class Measurer:
    """Measures the current process and a model, in the runner's metric names. Made by :func:`measure`.

    ``sample()`` (or leaving a ``with`` block, which stores it in :attr:`metrics`) returns::

        wall_s, cpu_s        since the Measurer was created (make one per trial, before its first step),
                             the Measurer's own probes excluded: cumulative, like the runner's
        rss_mb, peak_rss_mb  this process's RSS now and its peak (VmHWM) since the Measurer was created
        peak_rss_delta_mb    that peak above the RSS when the Measurer was created
        energy_j             RAPL/NVML energy since created; None (missing) where the machine has no counter
        gpu_mem_mb           peak CUDA memory of this process (torch), None without CUDA
        infer_ms (+ _lo, _hi), n_params, model_bytes, model_mem_mb
                             the structural metrics of ``model`` (:func:`probe_model`), when ``structural``

    What measuring inside one's own process cannot isolate: ``cpu_s``, ``rss_mb`` and the peak are the
    *process's*. Trials run in threads of one process (``n_jobs > 1``) share them, so one trial's peak may be
    another's; memory a finished trial freed may stay with the process; the peak is reset when a Measurer is
    created, so two Measurers alive at once reset each other's. The sysprune runner (``sysprune run``) trains
    every trial in its own process and measures it from outside — use it when these matter.
    """

    def __init__(
        self, model: Any = None, batch: Any = None, *, optimizer: Any = None, repeats: int = 5, reset_peak: bool = True
    ) -> None:
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise ValueError(f"repeats must be an integer >= 1, but got {repeats=}.")
        if model is not None and not (_is_torch_module(model) or hasattr(model, "get_params")):
            raise TypeError(
                f"model must be a torch.nn.Module or a scikit-learn estimator, but got {type(model).__name__}."
            )
        if batch is not None and len(batch) == 0:
            raise ValueError("batch must hold at least one sample for the latency probe, but got an empty batch.")
        self.model, self.batch, self.optimizer, self.repeats = model, batch, optimizer, repeats
        if reset_peak:
            reset_peak_rss()
        pid = os.getpid()
        self._baseline_mb = read_status_mb(pid)[0]
        self._t0 = time.perf_counter()
        self._monitor = ProcessMonitor(pid, self._t0)
        self._cpu0 = self._monitor.cpu_s()  # the process's CPU time so far (the monitor's figure is its total)
        self._probe_wall = self._probe_cpu = 0.0
        #: The metrics of the last sample (set when a ``with`` block ends), None before.
        self.metrics: dict[str, float | None] | None = None

    def sample(self, *, structural: bool = True) -> dict[str, float | None]:
        """The metrics now; the structural ones (a latency probe: milliseconds) only if ``structural``."""
        now = time.perf_counter()
        s = self._monitor.sample(now)
        metrics: dict[str, float | None] = {
            "wall_s": s.wall_s - self._probe_wall,
            "cpu_s": s.cpu_s - self._cpu0 - self._probe_cpu,
            "energy_j": s.energy_j,
            "rss_mb": s.rss_mb,
            "peak_rss_mb": s.peak_rss_mb,
            "peak_rss_delta_mb": s.peak_rss_mb - self._baseline_mb,
            "gpu_mem_mb": _gpu_mem_mb(),
        }
        if structural and self.model is not None:
            metrics.update(probe_model(self.model, self.batch, self.repeats, optimizer=self.optimizer))
            self._probe_wall += time.perf_counter() - now
            self._probe_cpu += self._monitor.cpu_s() - s.cpu_s
        self.metrics = metrics
        return dict(metrics)

    def __enter__(self) -> "Measurer":
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            self.sample()


def _gpu_mem_mb() -> float | None:
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return torch.cuda.max_memory_allocated() / _MIB


def measure(model: Any = None, batch: Any = None, *, optimizer: Any = None, repeats: int = 5) -> Measurer:
    """Measure a plain Optuna objective the way the sysprune runner measures its trials.

    Create one per trial before training; take a sample per step::

        m = sysprune.measure(model=net, batch=X_val[:256], optimizer=opt)
        for step in range(n_steps):
            train_one_epoch(net, opt)
            # structural metrics (latency probe, size) only where they can change: first and last step
            metrics = m.sample(structural=step in (0, n_steps - 1))
            sysprune.report(trial, step, accuracy(net), metrics)
            if sysprune.should_prune(trial):
                raise optuna.TrialPruned()

    or ``with sysprune.measure(model=net, batch=X) as m: ...`` and read ``m.metrics`` after the block.

    Args:
        model: a ``torch.nn.Module`` or a scikit-learn estimator, for the structural metrics (optional).
        batch: the inputs the latency probe predicts (numpy array or tensor); ``infer_ms`` is per sample.
        optimizer: the torch optimizer, for ``model_mem_mb``'s optimizer state.
        repeats: timed inference calls per probe.

    Returns a :class:`Measurer`; see it for every metric and for what in-process measurement cannot isolate.
    """
    return Measurer(model, batch, optimizer=optimizer, repeats=repeats)
