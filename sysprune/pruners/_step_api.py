"""The per-step calls an objective makes: :func:`report` one step, then ask :func:`should_prune`.

The sysprune runner uses exactly these two calls in its step loop, and any plain Optuna objective can too::

    for step in range(n_steps):
        ...  # train one step, measure
        sysprune.report(trial, step, accuracy, {"wall_s": wall, "cpu_s": cpu, "infer_ms": latency})
        if sysprune.should_prune(trial):
            raise optuna.TrialPruned()

:func:`report` writes the step's metrics to the metric store beside the study, remembers them in this process for
the pruners, and reports the objective value to Optuna — on an RDB storage the rows and the value in one
transaction (what ``trial.report`` would store in a second one), elsewhere one storage call plus ``trial.report``.
:func:`should_prune` asks the study's pruner — also in a multi-objective study, where Optuna's
``Trial.should_prune`` refuses — and, when it says to prune, records why (the one bookkeeping path:
:func:`sysprune.pruners._reasons.record_decision`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna

from sysprune import _compat
from sysprune._validation import AnyOf, Constraint, Exactly, InstanceOf, Integer, MappingOf, Text, check, check_params
from sysprune.exceptions import InvalidArgument
from sysprune.metrics._format import nan_to_none
from sysprune.metrics._registry import PRETRAIN_STEP as _PRETRAIN_STEP
from sysprune.pruners import _steps
from sysprune.pruners._reasons import builtin_decision, collect, record_decision
from sysprune.storage._step_table import METRIC_NAME_MAX as _MAX_NAME
from sysprune.storage._step_table import MetricStore


class _Measurement(Constraint):
    """A measured value: None (missing), or a number — anything ``float()`` reads (numpy's and torch's scalars
    too), but not a boolean or a string. NaN is missing."""

    def accepts(self, v: Any) -> bool:
        if v is None or type(v) is float:  # the common cases first: sysprune.report checks every step's metrics
            return True
        if isinstance(v, (bool, str, bytes)):
            return False
        try:
            float(v)
        except (TypeError, ValueError):
            return False
        return True

    def describe(self) -> str:
        return "a number or None"

    def normalise(self, v: Any) -> float | None:
        return nan_to_none(v)


_TRIAL = InstanceOf(optuna.Trial, "an optuna.Trial (the running trial)")
#: :func:`report`'s arguments, declared once (``value`` is a number or None, and see :func:`report` for when it
#: must be None).
_REPORT = {
    "trial": _TRIAL,
    "step": AnyOf((Integer(low=0), Exactly(_PRETRAIN_STEP, f"{_PRETRAIN_STEP} (the pre-training probe)"))),
    "value": _Measurement(),
    "metrics": AnyOf((MappingOf(Text(max_len=_MAX_NAME), _Measurement(), what="metric name"), Exactly(None))),
}


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
            The step, an integer >= 0 (the first step is 0), or ``-1`` (:data:`sysprune.PRETRAIN_STEP`) for the
            pre-training probe: the model's structural metrics, measured before it trains, with no ``value``.
        value:
            The objective value at this step, reported with :meth:`optuna.Trial.report` (NaN allowed). Must be
            :obj:`None` in a multi-objective study, where Optuna has no intermediate values, and at step ``-1``.
        metrics:
            Metric name → value at this step, in sysprune's vocabulary (``wall_s``, ``cpu_s``, ``energy_j``,
            ``peak_rss_mb``, ``infer_ms``, ``model_bytes``, ...; other names are stored too). :obj:`None` or NaN
            records the metric as *missing*. Cumulative metrics (``wall_s``, ``cpu_s``, ``energy_j``) are totals
            since the trial started, not per-step costs.

    The first value reported for a step wins, for the metrics as for Optuna's intermediate values. The metrics go
    to the store beside the study (:mod:`sysprune.storage._step_table`: a table for an RDB storage, trial system attributes
    for any other storage, a journal included).

    Raises:
        InvalidArgument (a ``ValueError`` and a ``TypeError``): if ``trial`` is not an :class:`optuna.Trial`,
            ``step`` is not an integer >= -1, a value is not a number, a metric name is empty or too long, or
            ``value`` is given at step -1 or in a multi-objective study.
    """
    _report(trial, step, value, metrics)


Held = dict[int, dict[str, float | None]]


def hold(trial: optuna.Trial, step: int, metrics: Mapping[str, float | None] | None) -> Held:
    """:func:`report` of a step with no value (the runner's step -1), checked and remembered for the pruner but not
    stored yet: the caller passes what this returns as ``held`` to the next :func:`report_held` of the trial, which
    stores it in that step's transaction (or to :func:`store_held` if the trial ends first)."""
    return _report(trial, step, None, metrics, store=False)


def report_held(
    trial: optuna.Trial,
    step: int,
    value: float | None,
    metrics: Mapping[str, float | None] | None,
    *,
    held: Held | None = None,
    user_attrs: Mapping[str, Any] | None = None,
) -> None:
    """:func:`report`, with the ``held`` steps' rows (:func:`hold`) and the trial's ``user_attrs`` (the runner's
    last step: its totals, final metrics and worker CPU) stored too: on an RDB storage in the step's one
    transaction, elsewhere by one storage call each."""
    _report(trial, step, value, metrics, user_attrs=dict(user_attrs or {}), held=held)


def store_held(trial: optuna.Trial, held: Held) -> None:
    """Store the rows :func:`hold` kept back (the trial ends before its next step is reported)."""
    for step, metrics in held.items():
        _report(trial, step, None, metrics)


def _report(
    trial: optuna.Trial,
    step: int,
    value: float | None,
    metrics: Mapping[str, float | None] | None,
    *,
    user_attrs: dict[str, Any] | None = None,
    held: Held | None = None,
    store: bool = True,
) -> Held:
    args = check_params("report", _REPORT, {"trial": trial, "step": step, "value": value, "metrics": metrics})
    if step == _PRETRAIN_STEP and value is not None:
        raise InvalidArgument(
            "value",
            value,
            f"None at step {_PRETRAIN_STEP} (the pre-training probe has no objective value)",
            where="report",
        )
    study = trial.study
    if value is not None and len(study.directions) > 1:
        raise InvalidArgument(
            "value",
            value,
            "None in a multi-objective study (Optuna has no intermediate values there; report the objectives as "
            "metrics)",
            where="report",
        )
    clean: dict[str, float | None] = args["metrics"] or {}
    storage = _compat.study_storage(study)
    trial_id = _compat.trial_id(trial)
    if not store:  # hold(): for the pruner only
        if clean:
            _steps.remember(storage, trial_id, trial.datetime_start, step, clean)
        return {step: clean}
    steps = _steps.metric_store(storage)
    where: dict[str, Any] = {
        "study_name": study.study_name,
        "trial_id": trial_id,
        "trial_number": trial.number,
        "step": step,
    }
    if value is not None and isinstance(steps, MetricStore) and step not in _compat.reported_steps(trial):
        # The step's rows and its intermediate value in one transaction (what trial.report stores, its own
        # transaction otherwise: see _compat.write_intermediate_value); held rows and attrs with them.
        steps.write_step_and_value(
            **where,
            metrics=clean,
            value=float(value),
            trial_start=trial.datetime_start,
            user_attrs=user_attrs,
            earlier=held,
        )
        held = None
        _compat.remember_intermediate_value(trial, step, float(value))
        if user_attrs:
            _compat.remember_user_attrs(trial, user_attrs)
            user_attrs = None
        value = None
    else:
        for earlier, row in (held or {}).items():
            steps.write_step(**{**where, "step": earlier}, metrics=row, trial_start=trial.datetime_start)
        if clean:
            steps.write_step(**where, metrics=clean, trial_start=trial.datetime_start)
    if clean:
        _steps.remember(storage, trial_id, trial.datetime_start, step, clean)
    if value is not None:
        trial.report(value, step)
    if user_attrs:
        _compat.set_trial_user_attrs(trial, user_attrs)
    return {step: clean}


def should_prune(trial: optuna.Trial) -> bool:
    """Whether the study's pruner says to prune the trial now; works in single- and multi-objective studies.

    Same as :meth:`optuna.Trial.should_prune` (which raises in a multi-objective study): the pruner receives the
    study and the trial's latest ``FrozenTrial``. When it says to prune, the decision is recorded on the trial
    (:func:`sysprune.pruners._reasons.record_decision`: ``prune_reason``, ``prune_detail`` and, for a budget
    breach, the ``budget:<metric>`` constraints): a sysprune pruner's own decision — also from inside an Optuna
    wrapper such as ``PatientPruner`` — or, for one of Optuna's pruners, a generic one (rule ``intermediate``).
    When it says to go on, nothing is written.
    """
    check(trial, _TRIAL, "trial", where="should_prune")
    study = trial.study
    frozen = _compat.latest_trial(trial)
    pruner = study.pruner
    with collect() as decisions:
        pruned = pruner.prune(study, frozen)
    if not pruned:
        return False
    record_decision(trial, decisions[0] if decisions else builtin_decision(pruner, frozen))
    return True
