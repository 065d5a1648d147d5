"""What the dashboard pages are made of: one finished trial's step metrics and verdict, read once and kept.

A finished trial never changes again (Optuna refuses updates, and the store keeps the first value per step), so
the publisher reads each trial's steps once and rebuilds the study figures from memory afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sysprune import _attrs, _compat
from sysprune._attrs import CONSTRAINT_PREFIX
from sysprune.metrics import _registry as _metrics
from sysprune.metrics._format import finite_or_none

#: The trial states the publisher shows: a trial is published once it is finished.
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass(frozen=True)
class TrialCurves:
    """One finished trial as the dashboard shows it."""

    trial_id: int
    number: int
    state: TrialState
    #: ``{step: {metric: value or None}}`` in step order.
    steps: dict[int, dict[str, float | None]]
    values: tuple[float, ...] | None = None
    reason: str | None = None
    detail: Mapping[str, Any] | None = None
    error: str | None = None
    constraints: Mapping[str, float] = field(default_factory=dict)
    user_attrs: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    datetime_start: str | None = None
    datetime_complete: str | None = None
    #: The last intermediate value (the objective at the last step reported; a pruned trial's last word).
    last_value: float | None = None

    def metric_names(self) -> list[str]:
        """Metrics with at least one value in this trial: the vocabulary's order, then custom ones by name."""
        present = {m for row in self.steps.values() for m, v in row.items() if v is not None}
        names = _metrics.metric_names()
        return [m for m in names if m in present] + sorted(present - set(names))

    def recorded_names(self) -> list[str]:
        """Metrics recorded at some step, measured or missing (``None``): the CSV's columns."""
        present = {m for row in self.steps.values() for m in row}
        names = _metrics.metric_names()
        return [m for m in names if m in present] + sorted(present - set(names))

    def series(self, metric: str) -> tuple[list[int], list[float]]:
        """The steps at which ``metric`` was measured and its values there (a missing value is left out: a
        structural metric is measured at step -1 and the last step only)."""
        points = [(s, v) for s, row in self.steps.items() if (v := row.get(metric)) is not None]
        return [s for s, _ in points], [v for _, v in points]

    def objective(self) -> float | None:
        """The trial's (first) objective: its value if complete, else its last intermediate value."""
        if self.values:
            return finite_or_none(self.values[0])
        return self.last_value

    def budget_constraint(self, metric: str) -> float | None:
        """The trial's ``budget:<metric>`` constraint (value - budget; > 0: over budget), if set."""
        value = self.constraints.get(CONSTRAINT_PREFIX + metric)
        return float(value) if value is not None else None

    @property
    def infeasible(self) -> bool:
        """Over some budget (any constraint above 0)."""
        return any(v > 0 for v in self.constraints.values())

    def final(self, metric: str) -> float | None:
        """The value the runner recorded as final (user attr), else the last measured step's value."""
        value = self.user_attrs.get(metric)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        for step in reversed(self.steps):
            value = self.steps[step].get(metric)
            if value is not None:
                return value
        return None


def from_trial(trial: FrozenTrial, steps: Mapping[int, Mapping[str, float | None]]) -> TrialCurves:
    """Combine a finished trial with its stored steps."""
    if trial.state not in FINISHED:
        raise ValueError(f"trial {trial.number} is {trial.state.name}; only finished trials are published")
    user = trial.user_attrs
    reason = user.get(_attrs.PRUNE_REASON)
    detail = user.get(_attrs.PRUNE_DETAIL)
    error = user.get(_attrs.ERROR) or trial.system_attrs.get("fail_reason")
    return TrialCurves(
        trial_id=_compat.trial_id(trial),
        number=trial.number,
        state=trial.state,
        steps={int(s): {m: finite_or_none(v) for m, v in steps[s].items()} for s in sorted(steps)},
        values=tuple(trial.values) if trial.values is not None else None,
        reason=str(reason) if reason is not None else None,
        detail=detail if isinstance(detail, Mapping) else None,
        error=str(error) if error else None,
        constraints=dict(trial.constraints),
        user_attrs=dict(user),
        params=dict(trial.params),
        datetime_start=trial.datetime_start.isoformat() if trial.datetime_start else None,
        datetime_complete=trial.datetime_complete.isoformat() if trial.datetime_complete else None,
        last_value=finite_or_none(trial.intermediate_values[trial.last_step]) if trial.last_step is not None else None,
    )


def finished_trials(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=FINISHED)
