"""What a pruner needs to know about the *other* trials, digested incrementally.

The curve pruner compares a forecast with the best *feasible* completed trial; a budget pruner without
``max_steps`` needs the length of a full trial, and one that predicts from a dry run how far the study's finished
trials bore such predictions out. Scanning every trial at every decision would make decisions grow
with the study: reading ``FrozenTrial.constraints`` for 10,000 trials costs tens of milliseconds, and even Optuna's
cached ``study.get_trials()`` re-reads the running trials from the database and sorts the whole list (~10 ms at
10,000 trials on SQLite). Finished trials never change, so :class:`FinishedTrials` digests each one once and keeps
running summaries, and it asks for the trial list only when a trial has finished since its last look.

"Has one finished?" is, for an RDB storage, one indexed query on Optuna's ``trials`` table — a count of the
study's finished trials with an id above the last contiguous finished one — well under a millisecond whatever the
study's size. (It reads Optuna's ``trials`` table directly, through :func:`sysprune._compat.rdb_table`: the
schema of Optuna 5, checked by tests/test_compat.py.) Other storages
(in memory, journal) are asked for the trial list every time; theirs is an in-process list.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any, Callable

from optuna.study import StudyDirection
from optuna.trial import TrialState

from sysprune import _compat
from sysprune.pruners._dryrun import log_ratios
from sysprune.pruners._gains import StudyGains
from sysprune.storage._open import storage_key

if TYPE_CHECKING:
    import optuna

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class FinishedTrials:
    """Running summaries of one study's finished trials."""

    def __init__(self, probe: Callable[[int], int] | None = None) -> None:
        self._lock = threading.Lock()
        self._probe = probe  # trial_id -> number of the study's finished trials above it (None: always refresh)
        self._reset()

    def _reset(self) -> None:
        self._first_start: Any = None  # start time of trial 0, to notice a re-created study
        self._done: set[int] = set()  # numbers of finished trials digested above the prefix
        self._done_ids: set[int] = set()  # and their trial ids
        self._prefix = 0  # every trial numbered below this is finished and digested
        self._watermark = -1  # trial id of trial number prefix - 1
        self._refreshed = False
        self.best_feasible: float | None = None  # best value among COMPLETE, feasible trials (single objective)
        self.n_feasible_complete = 0
        self.max_last_step: int | None = None  # longest COMPLETE trial, in reported steps
        #: metric -> log(measured / predicted) of each COMPLETE trial that had a dry run (pruners/_dryrun.py)
        self.dry_run_log_ratios: dict[str, list[float]] = {}
        #: how the COMPLETE trials' curves went on after each step (single objective; pruners/_gains.py)
        self.gains: StudyGains | None = None

    def update(self, study: "optuna.study.Study") -> "FinishedTrials":
        with self._lock:
            if self._refreshed and self._probe is not None:
                if self._probe(self._watermark) == len(self._done_ids):
                    return self  # nothing finished since the last look
            self._refresh(study)
        return self

    def _refresh(self, study: "optuna.study.Study") -> None:
        trials = study.get_trials(deepcopy=False)  # sorted by number, numbered 0, 1, 2, ...
        single = len(study.directions) == 1
        maximize = single and study.direction == StudyDirection.MAXIMIZE
        if trials and self._first_start is not None and trials[0].datetime_start != self._first_start:
            probe = self._probe
            self._reset()  # the study was deleted and re-created under the same id
            self._probe = probe
        if trials and self._first_start is None:
            self._first_start = trials[0].datetime_start
        if self._prefix >= len(trials):
            start = len(trials)
        elif trials[self._prefix].number == self._prefix:
            start = self._prefix
        else:  # not numbered 0, 1, 2, ... (a filtered study): look at every trial
            start = 0
        for t in trials[start:]:
            if t.number not in self._done and t.number >= self._prefix and t.state.is_finished():
                self._digest(t, maximize, single=single)
                self._done.add(t.number)
                self._done_ids.add(_compat.trial_id(t))
        while self._prefix in self._done:
            if trials[min(self._prefix, len(trials) - 1)].number == self._prefix:
                t = trials[self._prefix]
            else:
                t = next(x for x in trials if x.number == self._prefix)
            self._done.discard(self._prefix)
            self._watermark = _compat.trial_id(t)
            self._done_ids.discard(self._watermark)
            self._prefix += 1
        self._refreshed = True

    def _digest(self, t: "optuna.trial.FrozenTrial", maximize: bool, *, single: bool) -> None:
        if t.state != TrialState.COMPLETE:
            return
        if t.last_step is not None and (self.max_last_step is None or t.last_step > self.max_last_step):
            self.max_last_step = t.last_step
        for metric, r in log_ratios(t.user_attrs).items():
            self.dry_run_log_ratios.setdefault(metric, []).append(r)
        if single and t.intermediate_values:
            if self.gains is None:
                self.gains = StudyGains(maximize=maximize)
            self.gains.add(t.intermediate_values)
        if not single or t.value is None or math.isnan(t.value):
            return
        if any(v > 0 for v in t.constraints.values()):
            return
        self.n_feasible_complete += 1
        if self.best_feasible is None or (t.value > self.best_feasible if maximize else t.value < self.best_feasible):
            self.best_feasible = t.value


def _rdb_probe(study: "optuna.study.Study") -> Callable[[int], int] | None:
    """For an RDB storage: a function counting the study's finished trials with an id above a given one."""
    import sqlalchemy as sa

    backend = _compat.rdb_backend(_compat.study_storage(study))
    if backend is None:
        return None
    trials = _compat.rdb_table("trials")
    query = sa.select(sa.func.count()).where(
        trials.c.study_id == sa.bindparam("study_id"),
        trials.c.trial_id > sa.bindparam("above"),
        trials.c.state.in_(_FINISHED),
    )
    engine = backend.engine
    study_id = _compat.study_id(study)

    def probe(above: int) -> int:
        with engine.connect() as conn:
            return int(conn.execute(query, {"study_id": study_id, "above": above}).scalar_one())

    return probe


class StudyViews:
    """One :class:`FinishedTrials` per study a pruner sees (a pruner object may serve several studies)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._views: dict[tuple[object, int], FinishedTrials] = {}

    def get(self, study: "optuna.study.Study") -> FinishedTrials:
        key = (storage_key(_compat.study_storage(study)), _compat.study_id(study))
        with self._lock:
            view = self._views.get(key)
            if view is None:
                view = self._views[key] = FinishedTrials(_rdb_probe(study))
        return view.update(study)
