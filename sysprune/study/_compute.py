"""What a search burned: the trial processes' CPU plus the worker's own, per trial, and a search-level budget.

Compute of a trial = ``process_cpu_s`` (the whole trial process: set-up, training, probes, a step cut short by a
prune; written by the runner) + ``worker_cpu_s`` (this worker's CPU on that trial: sampling, the pruner, storage
writes, publishing). :class:`WorkerCompute` wraps the objective and measures the second with
:func:`time.thread_time` — the CPU of the thread that runs the trial, so parallel worker threads do not count each
other's work. The worker's time between two trials (the write of the previous trial's attributes, its ``tell``,
callbacks such as the dashboard publisher, then ``ask`` of this one) is charged to the *next* trial: a trial's
attributes can only be written while it runs, and a sysprune worker writes ``worker_cpu_s`` with the trial's other
attributes in one transaction (:meth:`WorkerCompute.charge`). The search's total therefore misses only the last
trial's attribute write, ``tell`` and callbacks. The worker's heartbeat thread (one per worker, a few beats a
minute) is not in any trial's figure.

:class:`ComputeBudget` is an Optuna callback that stops the study (``study.stop()``) once the trials finished in
this run have spent ``max_compute_s``, like Ray Tune's ``time_budget_s``: the trial running when it is spent
completes, no new trial starts.
"""

from __future__ import annotations

import datetime
import math
import threading
import time
from typing import Any, Callable

import optuna

from sysprune._attrs import PROCESS_CPU, WORKER_CPU
from sysprune.metrics._format import nan_to_none

_FINISHED = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
    optuna.trial.TrialState.FAIL,
)


def trial_compute(trial: optuna.trial.FrozenTrial) -> float | None:
    """``process_cpu_s + worker_cpu_s`` of a finished trial; ``None`` if neither was measured."""
    measured = [nan_to_none(trial.user_attrs.get(PROCESS_CPU)), nan_to_none(trial.user_attrs.get(WORKER_CPU))]
    parts = [p for p in measured if p is not None]
    return sum(parts) if parts else None


class WorkerCompute:
    """Objective wrapper: writes ``worker_cpu_s`` on each trial (see the module docstring).

    An objective that writes its trial's attrs in one transaction can take the figure into that write instead of a
    transaction of its own: it calls :meth:`charge` just before writing (the CPU up to that instant; the write itself
    and what follows it are charged to the next trial, like ``tell``), and this wrapper then writes nothing."""

    def __init__(self, objective: Callable[[optuna.Trial], Any]) -> None:
        self.objective = objective
        self._local = threading.local()

    def _since_mark(self) -> float:
        mark = getattr(self._local, "mark", None)
        now = time.thread_time()
        return 0.0 if mark is None else max(0.0, now - mark)

    def start(self) -> None:
        """Start the clock of this thread (the time until the first trial's objective — its ``ask`` — counts)."""
        self._local.mark = time.thread_time()

    def charge(self) -> float:
        """The running trial's ``worker_cpu_s`` up to now (CPU seconds, rounded to the microsecond), for the caller
        to write with the trial's other attrs; the clock restarts now, and the trial gets no write of its own.
        Call it from the objective this wrapper runs, on its thread."""
        now = time.thread_time()
        spent = getattr(self._local, "before", 0.0) + (now - getattr(self._local, "t0", now))
        self._local.charged = True
        self._local.mark = now
        return round(max(0.0, spent), 6)

    def __call__(self, trial: optuna.Trial) -> Any:
        self._local.before = self._since_mark()  # previous tell + callbacks + this trial's ask
        self._local.t0 = time.thread_time()
        self._local.charged = False
        try:
            return self.objective(trial)
        finally:
            if not self._local.charged:
                spent = self._local.before + (time.thread_time() - self._local.t0)
                try:
                    trial.set_user_attr(WORKER_CPU, round(spent, 6))
                finally:
                    self._local.mark = time.thread_time()


class ComputeBudget:
    """Callback: ``study.stop()`` once the trials finished in this run spent ``max_compute_s`` CPU seconds.

    Without ``since`` the run is the trials this callback saw (one worker). With ``since`` (a run of several
    workers, each with its own callback) it is every finished trial of the study that started at or after
    ``since``, read from the storage after each trial, so every worker stops once the run's total is spent.
    """

    def __init__(self, max_compute_s: float, *, since: datetime.datetime | None = None) -> None:
        if isinstance(max_compute_s, bool) or not isinstance(max_compute_s, (int, float)) or not max_compute_s > 0:
            raise ValueError(f"max_compute_s must be a number > 0, got {max_compute_s!r}")
        if not math.isfinite(max_compute_s):
            raise ValueError(f"max_compute_s must be finite, got {max_compute_s!r}")
        self.max_compute_s = float(max_compute_s)
        self.since = since
        self.spent = 0.0
        self.stopped = False
        self._lock = threading.Lock()

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        with self._lock:
            if self.since is None:
                self.spent += trial_compute(trial) or 0.0
            else:
                finished = study.get_trials(deepcopy=False, states=_FINISHED)
                since = self.since
                self.spent = sum(
                    trial_compute(t) or 0.0
                    for t in finished
                    if t.datetime_start is not None and t.datetime_start >= since
                )
            if self.spent >= self.max_compute_s and not self.stopped:
                self.stopped = True
                study.stop()
