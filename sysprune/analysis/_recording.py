"""A recording: a study run with policy ``none``, every trial to its end, read back for :mod:`._replay`.

Each COMPLETE (or hard-capped) trial keeps its parameters, its step rows as the runner recorded them (step -1, the
pre-training probe, first when there is one), its final objective values and its cumulative training CPU per step —
what a pruner would have seen and what stopping it at a step would have cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

from optuna.trial import TrialState

from sysprune import _attrs, _compat
from sysprune.analysis._trials import load_study
from sysprune.metrics._format import nan_to_none
from sysprune.metrics._registry import Better
from sysprune.pruners._reasons import RULE_HARD_CAP
from sysprune.spec import SpecError
from sysprune.storage._step_table import MetricStore


@dataclass
class RecordedTrial:
    number: int
    params: dict[str, Any]
    distributions: dict[str, Any]
    steps: list[tuple[int, float | None, dict[str, float | None]]]  # (step, objective value, metrics), in order
    values: list[float] | None  # final objective(s) of a COMPLETE trial
    cost: dict[int, float]  # step → cumulative training CPU at that step
    final: dict[str, float]  # each metric's last recorded value

    def cost_at(self, step: int | None) -> float:
        """Training CPU if the trial stops after ``step`` (None: it runs to its last recorded step)."""
        if not self.cost:
            return 0.0
        if step is None:
            step = max(self.cost)
        known = [s for s in self.cost if s <= step]
        return self.cost[max(known)] if known else 0.0

    def first_value(self) -> float:
        """The final value of the first objective; ValueError if the trial has none (it did not complete)."""
        if self.values is None:
            raise ValueError(f"recorded trial #{self.number} has no final value (it did not complete)")
        return self.values[0]


@dataclass
class Recording:
    study_name: str
    directions: list[Better]
    budgets: dict[str, float]
    steps: int
    objective: str | None
    trials: list[RecordedTrial]

    def feasible(self, t: RecordedTrial) -> bool:
        return all(t.final.get(m, -math.inf) <= b for m, b in self.budgets.items())

    def best(self) -> RecordedTrial | None:
        """The truly best feasible trial (single objective): best final value within every budget."""
        if len(self.directions) != 1:
            return None
        ok = [t for t in self.trials if t.values is not None and self.feasible(t)]
        if not ok:
            return None
        sign = 1 if self.directions[0] == "maximize" else -1
        return max(ok, key=lambda t: (sign * t.first_value(), -t.number))


def _rows_by_trial(df) -> dict[int, list[dict[str, Any]]]:
    """The step table (wide: ``trial_number``, ``step``, a column per metric) as trial number → its rows as dicts,
    in step order. One sort and one ``to_dict`` over the whole table: a pandas group and a ``to_dict`` per trial
    cost ~2 ms a trial, most of what ``replay`` spent reading a 10,000-trial recording (docs/workers.md)."""
    out: dict[int, list[dict[str, Any]]] = {}
    for rec in df.sort_values(["trial_number", "step"], kind="stable").to_dict("records"):
        out.setdefault(int(rec["trial_number"]), []).append(rec)
    return out


def load_recording(storage_url: str, study_name: str, budgets: dict[str, float] | None = None) -> Recording:
    """Read a ``none``-policy study and its step table. SpecError (one line) if it is not a full recording."""

    study = load_study(storage_url, study_name)
    policy = (study.user_attrs.get(_attrs.STUDY_PRUNER) or {}).get("policy", "none")
    if policy != "none":
        raise SpecError(
            f"study {study_name!r} was run with policy {policy!r}; replay needs a recording with policy "
            "'none' (every trial's full curve)"
        )
    trials = study.get_trials(deepcopy=False)
    cut = [
        t.number
        for t in trials
        if t.state == TrialState.PRUNED and (t.user_attrs.get(_attrs.PRUNE_DETAIL) or {}).get("rule") != RULE_HARD_CAP
    ]
    if cut:
        raise SpecError(
            f"study {study_name!r} has pruned trials ({', '.join(map(str, cut[:5]))}...); replay needs "
            "full curves (policy 'none')"
        )
    budgets = dict(study.user_attrs.get(_attrs.STUDY_BUDGETS) or {}) if budgets is None else dict(budgets)
    metric_names = list(study.metric_names or []) if study.metric_names else []
    objective = metric_names[0] if len(study.directions) == 1 and metric_names else None
    ids = {_compat.trial_id(t): t.number for t in trials}
    df = MetricStore(storage_url).load(study_name, ids)
    cols = [c for c in df.columns if c not in ("trial_number", "step")]
    by_trial = _rows_by_trial(df)
    out = []
    for t in trials:
        if t.state not in (TrialState.COMPLETE, TrialState.PRUNED) or t.number not in by_trial:
            continue  # failed or running trials have nothing a pruner could have seen to the end
        rows, cost, final = [], {}, {}
        for rec in by_trial[t.number]:
            step = int(rec["step"])
            metrics = {c: nan_to_none(rec[c]) for c in cols}
            metrics = {k: v for k, v in metrics.items() if v is not None}  # absent = missing, for every pruner
            value = t.intermediate_values.get(step) if step >= 0 else None
            if value is None and step >= 0 and objective is not None:
                value = metrics.get(objective)
            rows.append((step, value, metrics))
            cpu = metrics.get("cpu_s")
            if cpu is not None:
                cost[step] = float(cpu)
            final.update({k: v for k, v in metrics.items() if v is not None})
        values = list(t.values) if t.state == TrialState.COMPLETE and t.values is not None else None
        out.append(RecordedTrial(t.number, dict(t.params), dict(t.distributions), rows, values, cost, final))
    steps = int(study.user_attrs.get(_attrs.STUDY_STEPS) or max((max(t.cost, default=0) for t in out), default=0) + 1)
    # A stored study's directions are MINIMIZE or MAXIMIZE (Optuna validated them when the study was created).
    directions = cast("list[Better]", [d.name.lower() for d in study.directions])
    return Recording(study_name, directions, budgets, steps, objective, out)
