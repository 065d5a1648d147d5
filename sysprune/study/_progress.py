"""A live progress line for ``sysprune run`` / ``sysprune worker``: the study's totals, read from its database.

With several workers (local processes, other shells or machines, Ray tasks) every trial of the study counts, not
only this process's: ``[done/target]`` are the study's trials that count toward its ``n_trials`` and its target;
trials lost with a killed worker (or interrupted) are shown as ``lost`` and run again.
On a terminal the line is rewritten in place; elsewhere (CI logs, pipes) one line is printed per finished trial.
"""

from __future__ import annotations

import sys
import time
from typing import IO

import optuna
from optuna.trial import TrialState

from sysprune._attrs import ERROR, PRUNE_REASON
from sysprune.metrics._format import MISSING, fmt
from sysprune.study._lost import is_requeued


class Progress:
    """An Optuna callback (or a :class:`sysprune.study._launch.TrialFeed` callback). ``total`` is the study's target
    number of trials."""

    def __init__(self, total: int, *, stream: IO[str] | None = None, tty: bool | None = None) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.t0 = time.perf_counter()
        self.done = 0

    def best(self, study: optuna.Study) -> str:
        if len(study.directions) > 1:
            try:
                return f"pareto front {len(study.best_trials)}"
            except ValueError:
                return f"pareto front {MISSING}"
        try:
            bt = study.best_trial
        except ValueError:
            return f"best {MISSING}"
        return f"best {fmt(bt.value)} (#{bt.number})"

    def line(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str:
        trials = study.get_trials(deepcopy=False)
        lost = sum(is_requeued(t) for t in trials)
        c = {s: sum(t.state == s for t in trials) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
        self.done = c[TrialState.COMPLETE] + c[TrialState.PRUNED] + c[TrialState.FAIL] - lost
        elapsed = time.perf_counter() - self.t0
        last = f"#{trial.number} {trial.state.name.lower()}"
        why = {TrialState.PRUNED: PRUNE_REASON, TrialState.FAIL: ERROR}.get(trial.state)
        if why and trial.user_attrs.get(why):
            last += f" ({trial.user_attrs[why]})"
        elif trial.values is not None and len(trial.values) == 1:
            last += f" {fmt(trial.values[0])}"
        return (
            f"[{self.done}/{self.total}] complete {c[TrialState.COMPLETE]} · pruned {c[TrialState.PRUNED]} · "
            f"failed {c[TrialState.FAIL] - lost}{f' · lost {lost}' if lost else ''} · {self.best(study)} · "
            f"{elapsed:.0f}s · last {last}"
        )

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        text = self.line(study, trial)
        if self.tty:
            width = 160
            self.stream.write("\r" + text[:width].ljust(width))
            if self.done >= self.total:
                self.stream.write("\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
