"""A finished study as the analyses read it: one :class:`TrialRow` per trial, from the database only.

Reports read the store, never live objects, so a study run on another machine (or on PostgreSQL) reads the same.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from sysprune import _attrs
from sysprune._attrs import PROCESS_CPU, PROCESS_WALL, WORKER_CPU
from sysprune.study._compute import trial_compute
from sysprune.metrics._registry import metric_names as vocabulary
from sysprune.pruners import budget_constraints
from sysprune.storage._open import mask_url, open_existing
from sysprune.spec import SpecError


@dataclass
class TrialRow:
    number: int
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    params: dict[str, Any]
    #: The objective at the trial's end: its value if COMPLETE, else its last intermediate value (single objective).
    value: float | None
    values: list[float] | None  # every objective of a COMPLETE trial (multi-objective studies)
    constraints: dict[str, float]  # budget:<metric> → value − budget, by metric
    rule: str | None  # why it was pruned: budget, curve, intermediate, hard_cap (None if not pruned)
    last_step: int | None  # last reported step (None: none reported)
    compute: float | None  # process_cpu_s + worker_cpu_s
    process_cpu: float | None
    worker_cpu: float | None
    wall: float | None  # process_wall_s
    start: datetime.datetime | None
    complete: datetime.datetime | None
    metrics: dict[str, float] = field(default_factory=dict)  # each metric's final value (user attrs)
    distributions: dict[str, Any] = field(default_factory=dict)

    @property
    def feasible(self) -> bool:
        """No budget constraint over its budget (a trial without constraints is feasible)."""
        return all(v <= 0 for v in self.constraints.values())

    @property
    def finished(self) -> bool:
        return self.state in ("COMPLETE", "PRUNED", "FAIL")


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def row_of(t: optuna.trial.FrozenTrial, metric_names: tuple[str, ...] = ()) -> TrialRow:

    value: float | None = None
    values = None
    if t.state == TrialState.COMPLETE and t.values is not None:
        values = [float(v) for v in t.values]
        value = values[0] if len(values) == 1 else None
    elif t.intermediate_values:
        value = _num(t.intermediate_values[max(t.intermediate_values)])
    detail = t.user_attrs.get(_attrs.PRUNE_DETAIL)
    rule = None
    if t.state == TrialState.PRUNED:
        rule = detail.get("rule") if isinstance(detail, dict) else None
        rule = rule or "unknown"
    names = vocabulary() + tuple(metric_names)
    return TrialRow(
        number=t.number,
        state=t.state.name,
        params=dict(t.params),
        value=value,
        values=values,
        constraints={k: float(v) for k, v in budget_constraints(t).items()},
        rule=rule,
        last_step=t.last_step,
        compute=trial_compute(t),
        process_cpu=_num(t.user_attrs.get(PROCESS_CPU)),
        worker_cpu=_num(t.user_attrs.get(WORKER_CPU)),
        wall=_num(t.user_attrs.get(PROCESS_WALL)),
        start=t.datetime_start,
        complete=t.datetime_complete,
        metrics={k: float(t.user_attrs[k]) for k in names if _num(t.user_attrs.get(k)) is not None},
        distributions=dict(t.distributions),
    )


def rows_of(study: optuna.Study) -> list[TrialRow]:
    return [row_of(t) for t in study.get_trials(deepcopy=False)]


def completion_order(rows: list[TrialRow]) -> list[TrialRow]:
    """Finished trials in the order they finished (the number breaks ties): how a search spends its compute."""
    done = [r for r in rows if r.finished]
    far = datetime.datetime.max
    return sorted(done, key=lambda r: (r.complete or far, r.number))


def best_feasible(rows: list[TrialRow], direction: str) -> TrialRow | None:
    """The best COMPLETE, feasible trial of a single-objective study (None if there is none)."""
    ok = [r for r in rows if r.state == "COMPLETE" and r.feasible and r.value is not None]
    if not ok:
        return None
    if direction == "maximize":
        return max(ok, key=lambda r: (r.value, -r.number))  # the earliest of equals
    return min(ok, key=lambda r: (r.value, r.number))


def load_study(storage_url: str, study_name: str) -> optuna.Study:
    """The stored study, read from an existing database (nothing is created); SpecError (one line) if it is not
    there, DatabaseNotFound if the database is not."""

    storage = open_existing(storage_url)
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage))
        shown = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
        raise SpecError(f"no study {study_name!r} in {mask_url(storage_url)}; stored: {shown or '(none)'}") from None
