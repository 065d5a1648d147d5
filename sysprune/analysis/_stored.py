"""What a study database holds, as ``optuna studies`` / ``optuna best-trial`` show it: the stored studies (trials by
state, best feasible value, policy, budgets), one study's trials, its best trial. Reads only; creates nothing.

The functions return lines (tables sized by :mod:`._table`); ``sysprune studies --storage``, ``sysprune trials`` and
``sysprune best`` print them (:mod:`._stored_command`).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import optuna

from sysprune._attrs import ERROR, PRUNE_REASON, STUDY_BUDGETS, STUDY_PRUNER
from sysprune.analysis._table import text_table
from sysprune.analysis._trials import TrialRow, best_feasible, row_of
from sysprune.exceptions import StudyNotFound
from sysprune.metrics._format import MISSING, fmt, fmt_budgets, with_unit
from sysprune.storage._open import mask_url, open_existing

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


def closest(name: str, valid: Sequence[str]) -> str | None:
    """The valid name closest to ``name`` (difflib's ratio >= 0.6), None when none is close."""
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(name: str, valid: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest valid name, ``""`` when none is close."""
    close = closest(name, valid)
    return f"; did you mean {close!r}?" if close else ""


def pick_study(storage: optuna.storages.BaseStorage, name: str | None, where: str) -> str:
    """``name`` if the database holds it; the only study when ``name`` is None. StudyNotFound otherwise, naming the
    studies there and the closest one."""
    names = sorted(s.study_name for s in storage.get_all_studies())
    if name is None:
        if len(names) == 1:
            return names[0]
        if not names:
            raise StudyNotFound(f"no study in {where}")
        raise StudyNotFound(f"{where} holds {len(names)} studies ({', '.join(names)}); name one")
    if name not in names:
        shown = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
        raise StudyNotFound(f"no study {name!r} in {where}{did_you_mean(name, names)} (stored: {shown or 'none'})")
    return name


def load_stored(url: str, name: str | None) -> optuna.Study:
    """The stored study ``name`` (or the only one) at ``url``; DatabaseNotFound / StudyNotFound as one line."""
    storage = open_existing(url)
    return optuna.load_study(study_name=pick_study(storage, name, mask_url(url)), storage=storage)


def _policy(attrs: Mapping[str, Any]) -> str:
    pruner = attrs.get(STUDY_PRUNER)
    return str(pruner.get("policy", MISSING)) if isinstance(pruner, dict) else MISSING


def _budgets(attrs: Mapping[str, Any]) -> dict[str, float]:
    budgets = attrs.get(STUDY_BUDGETS)
    return {str(k): float(v) for k, v in budgets.items()} if isinstance(budgets, dict) else {}


def _best_text(study: optuna.Study, rows: Sequence[TrialRow]) -> str:
    if len(study.directions) > 1:
        front = study.best_trials
        return f"pareto front {len(front)}" if front else MISSING
    best = best_feasible(list(rows), study.direction.name.lower())
    return f"{fmt(best.value)} (#{best.number})" if best else MISSING


def counts_text(rows: Sequence[TrialRow]) -> str:
    """``"20 complete · 4 pruned"``: the trials by state, states with none left out (``"0"`` for no trials)."""
    parts = [f"{n} {s.lower()}" for s in STATES if (n := sum(r.state == s for r in rows))]
    return " · ".join(parts) or "0"


def studies_lines(url: str, width: int | None = None) -> list[str]:
    """One row per stored study: its name, trials by state, best feasible value, direction(s), policy, budgets."""
    storage = open_existing(url)
    studies = sorted(storage.get_all_studies(), key=lambda s: s.study_name)
    if not studies:
        return [f"no study in {mask_url(url)}"]
    table = []
    for s in studies:
        study = optuna.load_study(study_name=s.study_name, storage=storage)
        rows = [row_of(t) for t in study.get_trials(deepcopy=False)]
        directions = ",".join(d.name.lower()[:3] for d in study.directions)
        attrs = study.user_attrs
        policy, budgets = _policy(attrs), fmt_budgets(_budgets(attrs))
        table.append([s.study_name, counts_text(rows), _best_text(study, rows), directions, policy, budgets])
    return text_table(("study", "trials", "best", "dir", "policy", "budgets"), table, width)


def _why(t: optuna.trial.FrozenTrial) -> str:
    return str(t.user_attrs.get(PRUNE_REASON) or t.user_attrs.get(ERROR) or "")


def trials_lines(
    study: optuna.Study, *, states: Sequence[str] = (), limit: int | None = None, width: int | None = None
) -> list[str]:
    """One row per trial (the last ``limit``, of ``states`` if given): number, state, objective, parameters, each
    budgeted metric's final value, and why it was pruned or failed."""
    budgets = _budgets(study.user_attrs)
    trials = [t for t in study.get_trials(deepcopy=False) if not states or t.state.name in states]
    if limit is not None:
        trials = trials[-limit:] if limit > 0 else []
    params = sorted({p for t in trials for p in t.params})
    header = ["#", "state", "value", *params, *budgets, "why"]
    table = []
    for t in trials:
        row = row_of(t)
        value = fmt(row.value) if row.values is None or len(row.values) == 1 else ", ".join(map(fmt, row.values))
        table.append(
            [str(t.number), t.state.name.lower(), value, *(fmt(t.params.get(p)) for p in params),
             *(with_unit(m, row.metrics.get(m)) for m in budgets), _why(t)]
        )  # fmt: skip
    if not table:
        return [f"no trials{' in state ' + ','.join(states) if states else ''} in study {study.study_name!r}"]
    return text_table(header, table, width)


def best_lines(study: optuna.Study) -> list[str]:
    """The best feasible trial (single objective: number, value, parameters, budgeted metrics against their budgets,
    compute), or the Pareto front's trials (several objectives)."""
    budgets = _budgets(study.user_attrs)
    if len(study.directions) > 1:
        front = sorted(study.best_trials, key=lambda t: t.number)
        if not front:
            return [f"study {study.study_name!r} has no complete trial"]
        return [f"pareto front of {study.study_name!r}: {len(front)} trial(s)"] + [
            f"  #{t.number}: values {', '.join(map(fmt, t.values))} · params {_params(t.params)}" for t in front
        ]
    rows = [row_of(t) for t in study.get_trials(deepcopy=False)]
    best = best_feasible(rows, study.direction.name.lower())
    if best is None:
        return [f"study {study.study_name!r} has no complete trial within its budgets ({counts_text(rows)})"]
    lines = [
        f"best trial of {study.study_name!r}: #{best.number}",
        f"  value    {fmt(best.value)} ({study.direction.name.lower()})",
        f"  params   {_params(best.params)}",
    ]
    for metric, budget in budgets.items():
        lines.append(f"  {metric}  {with_unit(metric, best.metrics.get(metric))} (budget {with_unit(metric, budget)})")
    lines.append(f"  compute  {fmt(best.compute)} CPU s")
    return lines


def _params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={fmt(v)}" for k, v in sorted(params.items())) or "none"
