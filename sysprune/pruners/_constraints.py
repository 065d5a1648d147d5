"""Budget constraints on trials, through Optuna 5's constraint mechanism.

Each budgeted metric becomes one constraint, key ``budget:<metric>`` (:data:`sysprune._attrs.CONSTRAINT_PREFIX`),
value = measured (or, for a trial pruned on a forecast, predicted) value − budget. A value > 0 means over budget:
the trial is infeasible. Optuna reads these itself — ``FrozenTrial.constraints`` — wherever it cares about
feasibility: ``study.best_trial`` / ``best_trials`` skip infeasible trials, TPESampler puts infeasible trials
(complete *or pruned*) on the "bad" side, NSGA-II ranks complete infeasible trials below feasible ones. No
``constraints_func`` is involved (deprecated in Optuna 5).

Optuna keeps the first value set for a key (a second ``set_constraint`` is ignored with a warning), so the value
must be final when set. sysprune sets it

* when a budget pruner's decision to prune is recorded (the breached metrics only, from the measured or predicted
  value; :func:`sysprune.pruners._reasons.record_decision`), and
* when the trial ends, via :func:`record_constraints` (every budgeted metric not yet set, from its final value).

Both paths skip keys already present, so calling them again is harmless. Constraints can only be written while
the trial is running: call :func:`record_constraints` *before* ``study.tell`` / ``raise optuna.TrialPruned``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sysprune import _compat
from sysprune._attrs import CONSTRAINT_PREFIX, HIDDEN_CONSTRAINTS
from sysprune._validation import MappingOf, Real, Text, check
from sysprune.metrics._format import nan_to_none
from sysprune.exceptions import InvalidArgument
from sysprune.metrics._registry import METRICS, system_metric_names
from sysprune.pruners import _steps
from sysprune.pruners._forecast import points_of
from sysprune.pruners._noise import settled_value

if TYPE_CHECKING:
    import optuna


def constraint_key(metric: str) -> str:
    """The constraint name of a budget on ``metric`` (``budget:<metric>``)."""
    return f"{CONSTRAINT_PREFIX}{metric}"


#: A budget: the upper limit of one system metric (a study file's ``[budgets]`` entries, a pruner's ``budgets``).
BUDGET = Real(low=0.0)
#: ``{metric: upper limit}``: a study file's ``[budgets]`` (none is fine) ...
BUDGETS = MappingOf(Text(system_metric_names), BUDGET, what="system metric")
#: ... and a budget pruner's ``budgets`` argument, which names at least one.
PRUNER_BUDGETS = MappingOf(Text(system_metric_names), BUDGET, what="system metric", min_len=1)


def check_budgets(budgets: Any, *, where: str | None = None) -> dict[str, float]:
    """Validate ``{metric: upper limit}`` (:data:`BUDGETS`); InvalidArgument names the key and value. A metric
    sysprune knows that is not a system metric (``val_accuracy``) is named as such, not as unknown."""
    if isinstance(budgets, Mapping):
        for key in budgets:
            if isinstance(key, str) and key in METRICS and key not in system_metric_names():
                raise InvalidArgument(
                    f"budgets.{key}",
                    key,
                    BUDGETS.keys.describe(),
                    problem=f"{key} is a learning metric, not a system metric (a curve policy such as 'median' or "
                    "'curve' prunes on it)",
                    where=where,
                )
    return check(budgets, BUDGETS, "budgets", where=where)


def budget_constraints(trial: "optuna.trial.FrozenTrial | optuna.trial.Trial") -> dict[str, float]:
    """The ``budget:<metric>`` constraints of a trial, keyed by metric (hidden ones included: see
    :func:`record_constraints`)."""
    hidden = trial.user_attrs.get(HIDDEN_CONSTRAINTS)
    out = {k: float(v) for k, v in hidden.items()} if isinstance(hidden, dict) else {}
    out.update(
        {
            key[len(CONSTRAINT_PREFIX) :]: value
            for key, value in trial.constraints.items()
            if key.startswith(CONSTRAINT_PREFIX)
        }
    )
    return out


def record_constraints(
    trial: "optuna.trial.Trial",
    budgets: Mapping[str, float],
    final_metrics: Mapping[str, float | None] | None = None,
    *,
    hidden: bool = False,
) -> dict[str, float]:
    """Give a finishing trial its budget constraints; return all its ``budget:`` constraints by metric.

    For every budgeted metric whose constraint is not set yet, the value is ``final - budget``, where ``final`` is
    ``final_metrics[metric]`` if given and not missing, else the last recorded (non-missing) value of the metric in
    the trial's steps. A metric with no value (say ``energy_j`` on a machine without RAPL) gets no constraint.
    Constraints already set (by a budget pruner at the moment it pruned) are kept. Idempotent.

    Call it while the trial is still running — before ``study.tell(...)`` or ``raise optuna.TrialPruned()`` — for
    completed and for pruned trials alike. It also drops the trial from the in-process step cache.

    ``hidden=True`` (the plain-Optuna baselines ``plain`` and ``precheck``): the same values go to the user attr
    ``sysprune:budget_constraints`` instead of Optuna's constraints, so that the analyses know which trials fit but
    the sampler, ``best_trial`` and the dashboard's feasibility do not — as in a plain Optuna study.

    Raises:
        InvalidArgument: if ``budgets`` names an unknown metric or a limit that is not a finite number >= 0.
    """

    budgets = check_budgets(budgets, where="record_constraints")
    storage = _compat.study_storage(trial.study)
    trial_id = _compat.trial_id(trial)
    existing = budget_constraints(trial)
    values: dict[str, float] = {}
    steps = None
    for metric, limit in budgets.items():
        if metric in existing:
            continue
        final = None if final_metrics is None else final_metrics.get(metric)
        final = nan_to_none(final)
        if final is None:
            if steps is None:
                steps = _steps.trial_steps(storage, trial_id, trial.datetime_start)
            pts = points_of(steps, metric)
            final = pts[-1][1] if pts else None
        if final is not None:  # h6: a noisy metric is infeasible only on a confident breach (pruners/_noise.py)
            steps = steps if steps is not None else _steps.trial_steps(storage, trial_id, trial.datetime_start)
            values[metric] = settled_value(metric, float(final), limit, steps) - limit
    write_constraints(trial, values, hidden=hidden, existing=existing)
    _steps.forget(storage, trial_id)
    return {**existing, **values}


def write_constraints(
    trial: "optuna.trial.Trial",
    values: Mapping[str, float],
    *,
    hidden: bool = False,
    existing: Mapping[str, float] | None = None,
) -> None:
    """Set ``metric -> value - budget`` constraints on a running trial, keeping any already set (Optuna keeps the
    first value per key) and skipping NaN (no constraint): Optuna's constraints, or with ``hidden`` the user attr
    ``sysprune:budget_constraints`` that only the analyses read. The one writer of budget constraints.
    ``existing``: the trial's :func:`budget_constraints` if the caller has just read them."""
    existing = budget_constraints(trial) if existing is None else existing
    new = {m: float(v) for m, v in values.items() if m not in existing and float(v) == float(v)}
    if not new:
        return
    if hidden:
        trial.set_user_attr(HIDDEN_CONSTRAINTS, {**existing, **new})
        return
    for metric, value in new.items():
        trial.set_constraint(constraint_key(metric), value)
