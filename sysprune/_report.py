"""The per-step calls an objective makes: :func:`report` one step, then ask :func:`should_prune`.

The sysprune runner uses exactly these two calls in its step loop, and any plain Optuna objective can too::

    for step in range(n_steps):
        ...  # train one step, measure
        sysprune.report(trial, step, accuracy, {"wall_s": wall, "cpu_s": cpu, "infer_ms": latency})
        if sysprune.should_prune(trial):
            raise optuna.TrialPruned()

:func:`report` writes the step's metrics to the metric store beside the study (one transaction), remembers them in
this process for the pruners, and reports the objective value to Optuna. :func:`should_prune` asks the study's
pruner — also in a multi-objective study, where Optuna's ``Trial.should_prune`` refuses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import optuna

from sysprune._attrs import PRUNE_DETAIL, PRUNE_REASON
from sysprune._metrics import PRETRAIN_STEP
from sysprune.pruners import _steps

_MAX_NAME = 64  # the store's metric column


def report(
    trial: optuna.Trial,
    step: int,
    value: float | None = None,
    metrics: Mapping[str, float | None] | None = None,
) -> None:
    """Record one step of a trial: its metrics and its objective value.

    Args:
        trial:
            The running trial (the object an objective receives, or ``study.ask()``).
        step:
            The step, an integer >= 0 (the first training step is 0), or ``-1``
            (:data:`sysprune.PRETRAIN_STEP`) for the pre-training probe: the model built, nothing trained, its
            structural metrics measured; ``value`` must then be None (Optuna gets no intermediate value for it).
        value:
            The objective value at this step, reported with :meth:`optuna.Trial.report` (NaN allowed). Must be
            :obj:`None` in a multi-objective study, where Optuna has no intermediate values.
        metrics:
            Metric name → value at this step, in sysprune's vocabulary (``wall_s``, ``cpu_s``, ``energy_j``,
            ``peak_rss_mb``, ``infer_ms``, ``model_bytes``, ...; other names are stored too). :obj:`None` or NaN
            records the metric as *missing*. Cumulative metrics (``wall_s``, ``cpu_s``, ``energy_j``) are totals
            since the trial started, not per-step costs.

    The first value reported for a step wins, for the metrics as for Optuna's intermediate values.

    Raises:
        TypeError: if ``trial`` is not an :class:`optuna.Trial`, or a value is not a number.
        ValueError: if ``step`` is below -1 or not an integer, a metric name is empty or too long, or ``value``
            is given in a multi-objective study or at step -1.
    """
    if not isinstance(trial, optuna.Trial):
        raise TypeError(f"trial must be an optuna.Trial (the running trial), but got {type(trial).__name__}.")
    if isinstance(step, bool) or not isinstance(step, int) or step < PRETRAIN_STEP:
        raise ValueError(f"step must be an integer >= 0, or {PRETRAIN_STEP} for the pre-training probe, but got {step=}.")
    if step == PRETRAIN_STEP and value is not None:
        raise ValueError(f"value must be None at the pre-training probe (step {PRETRAIN_STEP}): nothing is trained yet, "
                         f"but got {value=}.")
    study = trial.study
    if value is not None and len(study.directions) > 1:
        raise ValueError(
            f"value must be None in a multi-objective study (Optuna has no intermediate values there), "
            f"but got {value=}; report the objectives as metrics."
        )
    clean = _clean_metrics(metrics)

    if clean:
        _steps.metric_store(study._storage).write_step(
            study_name=study.study_name,
            trial_id=trial._trial_id,
            trial_number=trial.number,
            step=step,
            metrics=clean,
        )
        _steps.remember(study._storage, trial._trial_id, trial.datetime_start, step, clean)
    if value is not None:
        trial.report(value, step)


def should_prune(trial: optuna.Trial) -> bool:
    """Whether the study's pruner says to prune the trial now; works in single- and multi-objective studies.

    Same as :meth:`optuna.Trial.should_prune` (which raises in a multi-objective study): the pruner receives the
    study and the trial's latest ``FrozenTrial``. When the pruner is one of Optuna's own (median, hyperband, ...),
    which give no reason, a generic reason is recorded on the trial (rule ``intermediate``); sysprune's pruners
    record their own.
    """
    from sysprune.pruners._base import DecidingPruner
    from sysprune.pruners._combined import builtin_decision
    from sysprune.pruners._reasons import record_decision

    if not isinstance(trial, optuna.Trial):
        raise TypeError(f"trial must be an optuna.Trial (the running trial), but got {type(trial).__name__}.")
    study = trial.study
    get_latest = getattr(trial, "_get_latest_trial", None)  # what Trial.should_prune passes (no query)
    frozen = get_latest() if get_latest is not None else study._storage.get_trial(trial._trial_id)
    pruner = study.pruner
    if not pruner.prune(study, frozen):
        return False
    if not isinstance(pruner, DecidingPruner):
        record_decision(study, frozen, builtin_decision(pruner, frozen))
    _sync_reason(trial)
    return True


def _sync_reason(trial: optuna.Trial) -> None:
    """Let ``trial.user_attrs`` show the reason the pruner wrote through the storage (the Trial caches its attrs)."""
    cached = getattr(trial, "_cached_frozen_trial", None)
    if cached is None:
        return
    stored = trial.study._storage.get_trial_user_attrs(trial._trial_id)
    for key in (PRUNE_REASON, PRUNE_DETAIL):
        if key in stored:
            cached.user_attrs[key] = stored[key]


def _clean_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float | None]:
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a mapping of metric name to number or None, but got {metrics!r}.")
    out: dict[str, float | None] = {}
    for name, v in metrics.items():
        if not isinstance(name, str) or not name or len(name) > _MAX_NAME:
            raise ValueError(f"metric names must be non-empty strings of at most {_MAX_NAME} characters, got {name!r}.")
        if v is None:
            out[name] = None
            continue
        if isinstance(v, bool):
            raise TypeError(f"metrics[{name!r}] must be a number or None, but got {v!r}.")
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise TypeError(f"metrics[{name!r}] must be a number or None, but got {v!r}.") from None
        out[name] = None if math.isnan(f) else f
    return out
