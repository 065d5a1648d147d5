"""Trials of a worker that is gone: found, failed with the reason "worker lost", and their configuration retried.

Each trial records who runs it (user attr ``sysprune:worker``: host name and boot id, the worker's pid, that pid's
start time, the cores it may use). When a worker starts it fails, at once, the RUNNING trials of a worker on this
host whose process is gone (no such pid, or the pid now belongs to a process started at another time): that is how
the same command run again after ``kill -9`` recognises its own dead trials without waiting for a heartbeat. On
other hosts a dead worker's trials are found by Optuna's heartbeat after its grace period
(``optuna.storages.fail_stale_trials``, which calls the storage's :class:`LostTrialCallback`).

Either way the trial is FAIL with ``error = "worker lost"``, and its parameters are enqueued again (WAITING, with
the ``failed_trial`` / ``retry_history`` system attrs of Optuna's ``RetryHeartbeatStaleTrialCallback``); it does not
count toward n_trials (:func:`is_requeued`). A trial stopped by Ctrl-C or SIGTERM is recorded the same way with
``error = "interrupted (SIGINT)"`` / ``"interrupted (SIGTERM)"``.

A trial the database failed under (a full disk; the objective records ``database fault (to retry)`` if it still
can, else nothing — every other ending writes an ``error``) is requeued the same way at the next worker start
(:func:`retry_database_failures`), as ``database fault (retried)``.

A lost trial's compute is not lost with it: its worker never wrote ``process_cpu_s`` / ``process_wall_s``, so they
are taken from its last stored step (cumulative ``cpu_s`` / ``wall_s``: the last known figures, a lower bound —
the step it died in and its probes are missing). A trial lost before its first step has none.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.trial import FrozenTrial, TrialState

from sysprune import _compat
from sysprune import _attrs
from sysprune._attrs import WORKER_ATTR
from sysprune._logging import get_logger
from sysprune.exceptions import SyspruneError
from sysprune.storage._step_table import store_for

_log = get_logger(__name__)

LOST = "worker lost"
INTERRUPTED = "interrupted"  # + " (SIGINT)" / " (SIGTERM)"
#: A trial failed because the database failed under it (a full disk, a server gone): what its objective records
#: (when it still can) and, once the next worker start has enqueued its configuration again, what it says then.
DATABASE_PENDING = "database fault (to retry)"
DATABASE_RETRIED = "database fault (retried)"


def is_requeued(trial: FrozenTrial) -> bool:
    """A FAIL trial whose configuration was enqueued again: lost with its worker, or interrupted."""
    if trial.state != TrialState.FAIL:
        return False
    error = trial.user_attrs.get(_attrs.ERROR)
    return isinstance(error, str) and (error == LOST or error.startswith((INTERRUPTED, DATABASE_RETRIED)))


def failed_by_the_database(trial: FrozenTrial) -> bool:
    """A FAIL trial whose database failed under it and that is not retried yet: its objective recorded
    :data:`DATABASE_PENDING`, or could not record anything (every other ending writes an ``error`` with the
    trial's other attrs, before the trial is FAILed: a FAIL without one is a trial whose last writes were lost)."""
    if trial.state != TrialState.FAIL:
        return False
    error = trial.user_attrs.get(_attrs.ERROR)
    return error is None or (isinstance(error, str) and error.startswith(DATABASE_PENDING))


@dataclass(frozen=True)
class WorkerIdentity:
    """Where a worker process runs, so that a restart on the same host can tell that it is gone."""

    host: str
    pid: int
    started: float  # the pid's start time (psutil create_time): tells a reused pid apart

    @classmethod
    def current(cls) -> "WorkerIdentity":
        import psutil

        return cls(host_id(), os.getpid(), round(psutil.Process().create_time(), 2))

    def record(self) -> dict[str, Any]:
        """What a trial records about its worker (user attr ``sysprune:worker``), with the cores it may use."""
        return {"host": self.host, "pid": self.pid, "started": self.started, "cpus": sorted(os.sched_getaffinity(0))}

    def is_gone(self) -> bool:
        import psutil

        try:
            return round(psutil.Process(self.pid).create_time(), 2) != self.started
        except psutil.Error:
            return True


def host_id() -> str:
    """This machine: its name and boot id (a pid means nothing on another host or after a reboot)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = "?"
    return f"{platform.node()}/{boot}"


def _recorded_worker(trial: FrozenTrial) -> WorkerIdentity | None:
    w = trial.user_attrs.get(WORKER_ATTR)
    if not isinstance(w, dict):
        return None
    try:
        return WorkerIdentity(str(w["host"]), int(w["pid"]), float(w["started"]))
    except (TypeError, KeyError, ValueError):
        return None


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Enqueue ``trial``'s configuration again, with Optuna's retry bookkeeping (``failed_trial``,
    ``retry_history``; see ``RetryHeartbeatStaleTrialCallback``)."""
    if not trial.params:
        return  # nothing was drawn yet: a fresh trial is just as good
    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            system_attrs={
                "failed_trial": trial.system_attrs.get("failed_trial", trial.number),
                "retry_history": history,
            },
        )
    )


class LostTrialCallback:
    """``heartbeat_stale_trial_callback`` of the storage: a trial Optuna failed as stale gets its reason and is
    retried."""

    def __init__(self) -> None:
        self.failed: list[int] = []  # numbers of the trials it was called for

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        mark_failed(study, trial, LOST)
        self.failed.append(trial.number)


def last_known_compute(storage: Any, trial_id: int) -> dict[str, float]:
    """``process_cpu_s`` / ``process_wall_s`` of a trial whose worker could not write them: its last stored step's
    cumulative ``cpu_s`` / ``wall_s`` ({} when it stored no step)."""
    try:
        steps = store_for(storage).trial_steps(trial_id)
    except (SyspruneError, OSError, ValueError, sqlalchemy.exc.SQLAlchemyError) as e:
        _log.debug("no step figures for trial id %d: %s", trial_id, e)
        return {}
    measured = [row for _, row in sorted(steps.items()) if row.get("cpu_s") is not None]
    if not measured:
        return {}
    last = measured[-1]
    out = {_attrs.PROCESS_CPU: last["cpu_s"], _attrs.PROCESS_WALL: last.get("wall_s")}
    return {k: round(float(v), 4) for k, v in out.items() if v is not None}


def mark_failed(study: optuna.Study, trial: FrozenTrial, reason: str) -> None:
    """``trial`` has just been failed by this process: record ``reason`` (and, if its worker could not, the compute
    it is known to have spent), and enqueue its configuration again."""
    storage, trial_id = _compat.study_storage(study), _compat.trial_id(trial)
    _compat.set_finished_trial_user_attr(storage, trial_id, _attrs.ERROR, reason)
    if _attrs.PROCESS_CPU not in trial.user_attrs:
        for key, value in last_known_compute(storage, trial_id).items():
            _compat.set_finished_trial_user_attr(storage, trial_id, key, value)
    requeue(study, trial)
    _log.debug("trial %d failed (%s); its configuration will run again", trial.number, reason)


def fail_trial(study: optuna.Study, trial_id: int, reason: str) -> bool:
    """Fail a RUNNING trial with ``reason`` and requeue it; False when another process finished it first."""
    storage = _compat.study_storage(study)
    try:
        # The reason first, while it runs: a FAIL trial without one reads as one the database failed under
        # (failed_by_the_database), which another worker's start would requeue too.
        storage.set_trial_user_attr(trial_id, _attrs.ERROR, reason)
        if not storage.set_trial_state_values(trial_id, TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    mark_failed(study, storage.get_trial(trial_id), reason)
    return True


def retry_database_failures(study: optuna.Study) -> list[int]:
    """Requeue the FAIL trials the database failed under (:func:`failed_by_the_database`), their reason
    :data:`DATABASE_RETRIED` and their last known compute recorded; they no longer count toward n_trials. RDB
    storages (the only ones that write a finished trial's attrs). Returns their numbers. Call it under
    :func:`database_lock`."""
    storage = _compat.study_storage(study)
    if _compat.rdb_backend(storage) is None:
        return []
    backend = _compat.unwrap_storage(storage)
    retried = []
    for t in backend.get_all_trials(_compat.study_id(study), deepcopy=False, states=(TrialState.FAIL,)):
        if failed_by_the_database(t):
            error = t.user_attrs.get(_attrs.ERROR)
            detail = error[len(DATABASE_PENDING) :] if error else ": its last writes did not reach the database"
            mark_failed(study, t, DATABASE_RETRIED + detail)
            retried.append(t.number)
    return retried


def recover_lost_trials(study: optuna.Study, here: str | None = None) -> list[int]:
    """Fail (``worker lost``) and requeue the RUNNING trials whose worker is gone: on this host, those whose
    recorded process no longer exists (at once); anywhere, those whose heartbeat is stale. Returns their numbers.
    Call it under :func:`database_lock`."""
    here = here or host_id()
    lost = []
    backend = _compat.unwrap_storage(_compat.study_storage(study))
    for t in backend.get_all_trials(_compat.study_id(study), deepcopy=False, states=(TrialState.RUNNING,)):
        w = _recorded_worker(t)
        if w is not None and w.host == here and w.is_gone() and fail_trial(study, _compat.trial_id(t), LOST):
            lost.append(t.number)
    return sorted(lost + fail_stale_trials(study))


def fail_stale_trials(study: optuna.Study) -> list[int]:
    """Optuna's ``fail_stale_trials``: RUNNING trials whose heartbeat is older than the grace period are failed,
    and the storage's :class:`LostTrialCallback` marks and requeues them. Returns their numbers. (Optuna's
    ``optimize`` runs it before every trial; a sysprune worker once per heartbeat interval: ``_heartbeat.py``.)"""
    import warnings

    backend = _compat.unwrap_storage(_compat.study_storage(study))
    get_callback = getattr(backend, "get_heartbeat_stale_trial_callback", None)
    callback = get_callback() if get_callback is not None else None
    n_before = len(callback.failed) if isinstance(callback, LostTrialCallback) else 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return list(callback.failed[n_before:]) if isinstance(callback, LostTrialCallback) else []


def install_lost_trial_callback(storage: Any) -> None:
    backend = _compat.unwrap_storage(storage)
    if isinstance(backend, optuna.storages.RDBStorage):
        backend.heartbeat_stale_trial_callback = LostTrialCallback()
