"""One heartbeat thread per worker, beating for the trial it runs (instead of Optuna's thread per trial).

Optuna's ``optimize`` on a storage with heartbeats starts a thread for each trial (its first beat at once, then one
per ``heartbeat_interval``) and, before each trial, looks for the study's stale trials (a query over every RUNNING
trial and its heartbeat). A worker runs many short trials, and on SQLite that was ~2 ms of its CPU per trial
(2026-12-07) for a check whose answer can only change once per grace period. A sysprune worker instead keeps one
thread for its whole run that beats for the trial it has claimed — its first beat written with the trial by the
claim (by the thread at once for a popped WAITING trial), then every interval — and looks for stale trials before
a claim at most once per interval (:class:`ClaimingStudy`). What other workers see is what Optuna gives them: a
RUNNING trial has a heartbeat from its first instant, and a dead worker's trials are stale once the grace period
has passed.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sysprune._logging import get_logger

_log = get_logger(__name__)


class WorkerHeartbeat:
    """The heartbeat of one worker's current trial, from one daemon thread (started at the first :meth:`beat_for`).

    ``storage``: the :class:`optuna.storages.RDBStorage` (``record_heartbeat``); ``interval``: its heartbeat
    interval in seconds. A beat that fails (the database away for a moment) is logged and tried again at the next
    interval, as a trial's own heartbeat thread would; the trial itself is unaffected."""

    def __init__(self, storage: Any, interval: float) -> None:
        if not interval > 0:
            raise ValueError(f"heartbeat interval must be > 0 s, got {interval!r}")
        self._storage, self.interval = storage, float(interval)
        self._trial: int | None = None
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._last_stale_check: float | None = None

    def beat_for(self, trial_id: int, *, beaten: bool = False) -> None:
        """From now on beat for ``trial_id`` (the trial this worker just claimed): its first beat at once, or, when
        the claim wrote it with the trial (``beaten``), the next within an interval."""
        self._trial = trial_id
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sysprune-heartbeat", daemon=True)
            self._thread.start()
        if not beaten:
            self._wake.set()

    def stale_check_due(self) -> bool:
        """True at the first call and then once per interval: time to look for other workers' stale trials."""
        now = time.monotonic()
        if self._last_stale_check is not None and now - self._last_stale_check < self.interval:
            return False
        self._last_stale_check = now
        return True

    def close(self) -> None:
        """Stop the thread (the worker is done); a beat in flight is waited for, briefly."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            trial = self._trial
            if trial is None or self._stop.is_set():
                continue
            try:
                self._storage.record_heartbeat(trial)
            except Exception as e:  # the next interval tries again; the grace period is three intervals
                _log.debug("heartbeat of trial id %d not recorded: %s", trial, e)
