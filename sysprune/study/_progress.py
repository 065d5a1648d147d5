"""Progress for ``sysprune run`` / ``sysprune worker``: the study's totals, read from its database, with the rate
and an ETA, and the running trial's step.

With several workers (local processes, other shells or machines, Ray tasks) every trial of the study counts, not
only this process's: ``[done/target]`` are the study's trials that count toward its ``n_trials`` and its target;
trials lost with a killed worker (or interrupted) are shown as ``lost`` and run again.

* On a terminal: one line, a tqdm bar rewritten in place, as wide as the terminal is now (narrower when it is
  resized; never wrapped), ``[done/target] |bar| elapsed<eta, counts · best · the running trial's step``. The
  bar moves with the running trial's steps too (a trial is ``steps`` equal parts), so the rate and ETA are
  there after the first step rather than the first trial.
* Elsewhere (CI logs, pipes): one plain line per finished trial, with the elapsed time and the ETA.

The running trial's steps reach the display through :func:`notify_step`, which the objective calls after each step
(:mod:`sysprune.study._objective`): trials run by workers in other processes show only when they finish.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from typing import IO, Any

import optuna
from optuna.trial import TrialState

from sysprune._attrs import ERROR, PRUNE_REASON
from sysprune.metrics._format import MISSING, fmt
from sysprune.study._lost import is_requeued

#: Who hears about a step: ``listener(trial number, step, steps)`` (step -1: the model is built, nothing trained).
StepListener = Callable[[int, int, int], None]
_step_listeners: list[StepListener] = []
#: The bar's narrowest width on a terminal: the text after it is cut first.
MIN_BAR = 10


def notify_step(number: int, step: int, steps: int) -> None:
    """Tell the progress displays of this process that trial ``number`` measured ``step`` of ``steps``."""
    for listener in list(_step_listeners):
        listener(number, step, steps)


def eta_seconds(done: float, total: int, elapsed: float, start: float = 0.0) -> float | None:
    """Seconds left at this run's rate: ``(total - done) / ((done - start) / elapsed)``; None before any progress.
    ``start`` is what was done before this run began (a resumed study's trials)."""
    if done >= total:
        return 0.0
    progress = done - start
    if progress <= 0 or elapsed <= 0:
        return None
    return (total - done) * elapsed / progress


def fmt_duration(seconds: float | None) -> str:
    """``"45s"``, ``"3m05s"``, ``"2h04m"``; :data:`MISSING` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return MISSING
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    """An Optuna callback (or a :class:`sysprune.study._launch.TrialFeed` callback) and a step listener.

    ``total`` is the study's target number of trials; ``done`` the trials that already count (a resumed study),
    from which this run's rate is measured. ``ncols`` fixes the terminal width (default: the terminal's, read at
    each refresh). :meth:`close` ends the line and stops listening to steps.
    """

    def __init__(
        self,
        total: int,
        *,
        stream: IO[str] | None = None,
        tty: bool | None = None,
        done: int = 0,
        ncols: int | None = None,
        label: str = "",
    ) -> None:
        self.total = total
        self.label = label  # what this bar counts, before the counts (compare: "median s1, study 2/6")
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.t0 = time.perf_counter()
        self.start = self.done = done
        self.counts = ""  # "3 complete · 1 pruned" once a trial finished
        self.best_text = ""
        self.running: dict[int, float] = {}  # trial number -> share of its steps measured
        self.ncols = ncols
        self.bar: Any = None
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                initial=done,
                file=self.stream,
                ncols=ncols,
                dynamic_ncols=ncols is None,
                bar_format="[{desc}] {bar}| {elapsed}<{remaining}{postfix}",
                desc=self._desc(),
                mininterval=0.2,
                leave=True,
            )
            self._refresh("starting the trial processes")
        _step_listeners.append(self.step)

    def _desc(self) -> str:
        return f"{self.label} {self.done}/{self.total}" if self.label else f"{self.done}/{self.total}"

    # -- what the study says ---------------------------------------------------------------------------------
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

    def _count(self, study: optuna.Study) -> dict[str, int]:
        trials = study.get_trials(deepcopy=False)
        lost = sum(is_requeued(t) for t in trials)
        c = {s: sum(t.state == s for t in trials) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
        self.done = c[TrialState.COMPLETE] + c[TrialState.PRUNED] + c[TrialState.FAIL] - lost
        return {
            "complete": c[TrialState.COMPLETE],
            "pruned": c[TrialState.PRUNED],
            "failed": c[TrialState.FAIL] - lost,
            "lost": lost,
        }

    @staticmethod
    def _last(trial: optuna.trial.FrozenTrial) -> str:
        last = f"#{trial.number} {trial.state.name.lower()}"
        why = {TrialState.PRUNED: PRUNE_REASON, TrialState.FAIL: ERROR}.get(trial.state)
        if why and trial.user_attrs.get(why):
            last += f" ({trial.user_attrs[why]})"
        elif trial.values is not None and len(trial.values) == 1:
            last += f" {fmt(trial.values[0])}"
        return last

    def line(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str:
        """The plain line for a finished trial (off a terminal)."""
        c = self._count(study)
        elapsed = time.perf_counter() - self.t0
        eta = eta_seconds(self.done, self.total, elapsed, self.start)
        lost = f" · lost {c['lost']}" if c["lost"] else ""
        return (
            f"[{self._desc()}] complete {c['complete']} · pruned {c['pruned']} · "
            f"failed {c['failed']}{lost} · {self.best(study)} · "
            f"{fmt_duration(elapsed)} · eta {fmt_duration(eta)} · last {self._last(trial)}"
        )

    # -- callbacks -------------------------------------------------------------------------------------------
    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.running.pop(trial.number, None)
        if not self.tty:
            self.stream.write(self.line(study, trial) + "\n")
            self.stream.flush()
            return
        c = self._count(study)
        self.counts = " · ".join(f"{n} {k}" for k, n in c.items() if n or k in ("complete", "pruned"))
        self.best_text = self.best(study)
        self._refresh(f"last {self._last(trial)}")
        if self.done >= self.total:
            self.close()

    def step(self, number: int, step: int, steps: int) -> None:
        """A step listener: trial ``number`` measured ``step`` (of ``steps``; -1 is the model built)."""
        if not self.tty or steps <= 0:
            return
        self.running[number] = max(0.0, min(1.0, (step + 1) / steps))
        self._refresh(f"#{number} " + ("built" if step < 0 else f"step {step + 1}/{steps}"))

    def _width(self) -> int:
        if self.ncols is not None:
            return self.ncols
        try:
            return os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, ValueError, OSError):  # not a file descriptor (a test's stream), or not a terminal
            return 80

    def _refresh(self, now: str) -> None:
        if self.bar is None:
            return
        desc = self._desc()
        # What happens now first, then the best value and the counts; cut to leave the bar MIN_BAR columns.
        text = " · ".join(p for p in (now, self.best_text, self.counts) if p)
        room = self._width() - len(f"[{desc}] ") - MIN_BAR - len("| 00:00<00:00, ")
        if len(text) > room:
            text = text[: max(0, room - 1)] + "…"
        self.bar.desc = desc
        self.bar.n = min(self.total, self.done + sum(self.running.values()))
        self.bar.set_postfix_str(text, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        """End the line (on a terminal) and stop listening to steps; safe to call twice."""
        if self.step in _step_listeners:
            _step_listeners.remove(self.step)
        if self.bar is not None:
            self.bar.n = min(self.total, self.done)
            self.bar.refresh()
            self.bar.close()
            self.bar = None
