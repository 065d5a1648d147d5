"""Small helpers shared by the pruner tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import optuna
from optuna.trial import TrialState

from sysprune.pruners._step_api import report, should_prune
from sysprune.pruners import record_constraints


def cumulative(increments: Sequence[float], start: float = 0.0) -> list[float]:
    """Running totals of per-step costs: cumulative([2, 2, 2]) == [2, 4, 6]."""
    out, total = [], start
    for inc in increments:
        total += inc
        out.append(total)
    return out


def series(**columns: Sequence[float | None]) -> list[dict[str, float | None]]:
    """Per-step metric dicts from per-metric columns: series(wall_s=[1, 2]) == [{"wall_s": 1}, {"wall_s": 2}]."""
    n = len(next(iter(columns.values())))
    return [{name: col[i] for name, col in columns.items()} for i in range(n)]


def run_trial(
    study: optuna.Study,
    steps: Sequence[Mapping[str, float | None]],
    values: Sequence[float] | None = None,
    *,
    final: float | Sequence[float] | None = None,
    record: Mapping[str, float] | None = None,
) -> tuple[optuna.trial.FrozenTrial, int | None]:
    """Ask a trial, report each step (metrics, and ``values[step]`` if given) and ask to prune after each.

    Returns the finished trial and the step at which it was pruned (``None``: it completed, with ``final`` or the
    last value as its objective). With ``record`` (budgets), the trial gets its constraints before it ends, as the
    runner does.
    """
    trial = study.ask()
    for step, metrics in enumerate(steps):
        report(trial, step, None if values is None else values[step], metrics)
        if should_prune(trial):
            if record is not None:
                record_constraints(trial, record)
            study.tell(trial, state=TrialState.PRUNED)
            return study.trials[trial.number], step
    if final is None:
        final = values[-1] if values is not None else 0.0
    if record is not None:
        record_constraints(trial, record)
    study.tell(trial, final)
    return study.trials[trial.number], None
