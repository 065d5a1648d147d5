"""A live progress line for ``sysprune run``: trials done / pruned / failed and the best value so far.

On a terminal the line is rewritten in place; elsewhere (CI logs, pipes) one line is printed per finished trial.
"""

from __future__ import annotations

import sys
import time
from typing import IO

import optuna
from optuna.trial import TrialState

from sysprune._attrs import ERROR, PRUNE_REASON


def _fmt(v: float) -> str:
    return f"{v:.4g}"


class Progress:
    """An Optuna callback. ``total`` is the number of trials this run will add."""

    def __init__(self, total: int, *, stream: IO[str] | None = None, tty: bool | None = None) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.seen = 0
        self.t0 = time.perf_counter()
        self.counts = {TrialState.COMPLETE: 0, TrialState.PRUNED: 0, TrialState.FAIL: 0}

    def best(self, study: optuna.Study) -> str:
        if len(study.directions) > 1:
            try:
                return f"pareto front {len(study.best_trials)}"
            except ValueError:
                return "pareto front -"
        try:
            bt = study.best_trial
        except ValueError:
            return "best -"
        return f"best {_fmt(bt.value)} (#{bt.number})"

    def line(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str:
        c = self.counts
        elapsed = time.perf_counter() - self.t0
        last = f"#{trial.number} {trial.state.name.lower()}"
        why = {TrialState.PRUNED: PRUNE_REASON, TrialState.FAIL: ERROR}.get(trial.state)
        if why and trial.user_attrs.get(why):
            last += f" ({trial.user_attrs[why]})"
        elif trial.values is not None and len(trial.values) == 1:
            last += f" {_fmt(trial.values[0])}"
        return (
            f"[{self.seen}/{self.total}] complete {c[TrialState.COMPLETE]} · pruned {c[TrialState.PRUNED]} · "
            f"failed {c[TrialState.FAIL]} · {self.best(study)} · {elapsed:.0f}s · last {last}"
        )

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.seen += 1
        if trial.state in self.counts:
            self.counts[trial.state] += 1
        text = self.line(study, trial)
        if self.tty:
            width = 160
            self.stream.write("\r" + text[:width].ljust(width))
            if self.seen >= self.total:
                self.stream.write("\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
