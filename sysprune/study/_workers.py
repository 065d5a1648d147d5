"""Several workers on one study: a safe start, an exact trial count, lost trials retried, one CPU set each.

A *worker* is a process that runs trials of a study one after the other (each in its own measured trial process,
from the worker's own fork server). ``sysprune run`` is one worker, or launches ``--workers N`` of them;
``sysprune worker`` joins a study from another shell or machine; ``--ray`` runs them as Ray tasks (``_ray.py``).
They coordinate through the study's database only:

* **One lock per database** (``storage._lock.database_lock``), held for short, bounded pieces of work only:
  creating the schema and the study (so N workers started at once on a new database do not race), and claiming a
  trial slot — one indexed count and one insert, never the sampler.
* **An exact trial count**: ``n_trials`` is a total for the study. To claim a slot a worker takes the lock, counts
  the trials that count (:func:`counts_toward_target`: every trial that is not WAITING, except lost or interrupted
  ones, which are retried; one indexed ``count`` in the database, :func:`count_in_database`) and, below the
  target, creates the RUNNING trial with its worker record in one insert (or pops an enqueued one); then it lets
  the lock go. The count and the new trial are one atomic step, so no interleaving of workers can exceed the
  target and no trial is created only to be thrown away; the sampler then draws the trial's parameters outside
  the lock, as in plain Optuna (where creating a trial is serialised on the study's row, too).
* **Lost trials** (``_lost.py``): a gone worker's RUNNING trial is failed with ``error = "worker lost"`` when a
  worker starts — at once on the same host, after the heartbeat grace elsewhere — and its configuration retried; a
  trial stopped by Ctrl-C or SIGTERM is recorded as ``interrupted (...)`` and retried too.
* **Seeds**: every worker registers in the study and gets a number unique to it (0, 1, 2, ... in the order they
  start); its sampler seed is derived from the study seed and that number, so workers never draw the same
  parameters by seed arithmetic, and a resumed study does not replay its first draws.
* **CPU sets**: with several local workers, worker i pins itself (and so its fork server and trial processes) to
  cores ``i*threads .. i*threads+threads-1``; by default N is limited to what gives each trial its own cores.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sysprune import _compat
from sysprune import _attrs
from sysprune._attrs import WORKER_ATTR, WORKERS_KEY
from sysprune._logging import get_logger
from sysprune._plugins import import_plugins
from sysprune.storage._faults import database_fault
from sysprune.storage._lock import claim_lock, database_lock
from sysprune.storage._reconnect import reached
from sysprune.study._lost import (
    DATABASE_RETRIED,
    WorkerIdentity,
    fail_stale_trials,
    fail_trial,
    install_lost_trial_callback,
    is_requeued,
    mark_failed,
    recover_lost_trials,
    requeue,
    retry_database_failures,
)
from sysprune.exceptions import TooManyWorkers
from sysprune.spec import SpecError, StudySpec
from sysprune.study._counting import count, count_in_database, count_in_storage, stored_target
from sysprune.study._heartbeat import WorkerHeartbeat
from sysprune.study._interrupts import check, interrupted_reason, signals_deferred
from sysprune.study._objective import Objective
from sysprune.study._open import load_opened_study, make_sampler, open_study
from sysprune.storage._step_table import create_table
from sysprune.study._dataset import prepare_dataset
from sysprune.exceptions import TrialProcessError
from sysprune.trial._forkserver import needs, preload, uses_module, warm_up
from sysprune.models import get_model
from sysprune.study._compute import ComputeBudget, WorkerCompute

_log = get_logger(__name__)

Callback = Callable[[optuna.Study, FrozenTrial], None]


# ------------------------------------------------------------------------------------------- seeds and cores


def register_worker(study: optuna.Study) -> int:
    """A number unique to this worker in the study (0, 1, ...). Call it under :func:`database_lock`."""
    storage = _compat.study_storage(study)
    n = int(storage.get_study_system_attrs(_compat.study_id(study)).get(WORKERS_KEY, 0))
    storage.set_study_system_attr(_compat.study_id(study), WORKERS_KEY, n + 1)
    return n


def worker_seed(seed: int, worker_number: int) -> int:
    """The sampler seed of worker ``worker_number`` of a study seeded ``seed``: distinct per worker."""
    return int.from_bytes(hashlib.sha256(f"worker:{seed}:{worker_number}".encode()).digest()[:4], "little")


def available_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def cpu_sets(
    n_workers: int, threads: int, *, cpus: Sequence[int] | None = None, oversubscribe: bool = False
) -> list[tuple[int, ...]]:
    """The CPU set of each of ``n_workers`` local workers: worker i gets ``threads`` cores from ``i*threads``.

    Raises:
        TooManyWorkers: when they do not fit one trial per core and ``oversubscribe`` is False (then sets wrap
            around and are shared).
    """
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise SpecError(f"--workers must be an integer >= 1, got {n_workers!r}")
    cores = sorted(cpus) if cpus is not None else available_cpus()
    fit = len(cores) // threads
    if n_workers > fit and not oversubscribe:
        raise TooManyWorkers(
            f"--workers {n_workers}: this machine gives sysprune {len(cores)} core(s) and each trial uses "
            f"threads = {threads}, so at most {max(fit, 1)} worker(s) get cores of their own; use fewer workers, "
            f"or --oversubscribe to share cores (time and latency metrics then stop being comparable)"
        )
    return [tuple(cores[(i * threads + j) % len(cores)] for j in range(threads)) for i in range(n_workers)]


def parse_cpus(text: str) -> tuple[int, ...]:
    """``"0,2-3"`` → ``(0, 2, 3)`` (the ``taskset -c`` syntax)."""
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            out.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise SpecError(f"--cpus must be a list of cores like 0,2-3, got {text!r}") from None
    if not out:
        raise SpecError(f"--cpus must name at least one core, got {text!r}")
    return tuple(out)


# ------------------------------------------------------------------------------------------- one worker's loop


class _NoSlot(Exception):
    """The study holds its target number of trials."""


class ClaimingStudy(optuna.Study):
    """An ``optuna.Study`` whose :meth:`ask` first claims a slot (see the module docstring): under the database lock
    it counts the trials that count and, below the target, creates the RUNNING trial with this worker's record (or
    pops a WAITING one); the sampler runs after the lock is let go."""

    def __init__(
        self, study: optuna.Study, *, url: str, target: int, sampler: optuna.samplers.BaseSampler, me: WorkerIdentity
    ) -> None:
        storage = _compat.study_storage(study)
        backend = _compat.rdb_backend(storage)
        interval = backend.get_heartbeat_interval() if backend is not None else None
        # One heartbeat thread for the worker's life instead of Optuna's per trial (_heartbeat.py): Optuna's
        # optimize sees a storage without heartbeats; stale trials are looked for here, once per interval.
        self._heartbeat = WorkerHeartbeat(backend, interval) if interval else None
        if self._heartbeat is not None:
            storage = _compat.without_trial_heartbeat(storage)
        super().__init__(study_name=study.study_name, storage=storage, sampler=sampler, pruner=study.pruner)
        self._opened = study  # its storage reports the heartbeat: what Optuna's stale-trial check reads
        self._url, self._target, self._me = url, target, me
        self._engine = backend.engine if backend is not None else None
        self.current: optuna.Trial | None = None
        self.n_asked = 0

    def ask(self, fixed_distributions: dict | None = None) -> optuna.Trial:
        if fixed_distributions:
            raise ValueError("ClaimingStudy.ask takes no fixed_distributions (the objective suggests every parameter)")
        self.current = None  # the previous trial is told: an interrupt from now on is not its
        # A Ctrl-C / SIGTERM waits until the new trial is recorded here (it is then failed and requeued), so no
        # RUNNING trial is left without an owner to tell its worker is gone.
        check()  # a Ctrl-C / SIGTERM received before is raised here, between trials
        with signals_deferred():
            if self._heartbeat is not None and self._heartbeat.stale_check_due():
                fail_stale_trials(self._opened)  # what Optuna's optimize does before every trial
            trial_id, beaten = self._claim()
            if self._heartbeat is not None:  # its first beat was written with it, unless it was popped
                self._heartbeat.beat_for(trial_id, beaten=beaten)
            _compat.forget_cached_trials(self)  # what Study.ask does first: the sampler sees the trials of now
            try:
                trial = optuna.Trial(self, trial_id)  # the sampler's before_trial, outside the lock (it draws later)
            except Exception as e:  # the claimed trial is not left RUNNING (Study.ask would leave it so)
                _fail_claimed(_compat.study_storage(self), trial_id, f"the sampler failed: {type(e).__name__}: {e}")
                raise
            self.current = trial
            self.n_asked += 1
        return trial

    def _claim(self) -> tuple[int, bool]:
        """A slot: the id of the new (or popped) RUNNING trial, and whether its first heartbeat was written with it;
        :class:`_NoSlot` when the study holds its target."""
        storage, sid = _compat.study_storage(self), _compat.study_id(self)
        attrs = {WORKER_ATTR: self._me.record()}
        if self._engine is None:  # not an RDB storage (a journal file): Optuna's storage API under the lock
            with database_lock(self._url):
                trials = _compat.unwrap_storage(storage).get_all_trials(sid, deepcopy=False)
                if count(trials) >= self._target:
                    raise _NoSlot()
                waiting = any(t.state == TrialState.WAITING for t in trials)
                popped = _pop_waiting(storage, sid) if waiting else None
                if popped is None:
                    return storage.create_new_trial(sid, template_trial=_running_trial(attrs)), False
                storage.set_trial_user_attr(popped, WORKER_ATTR, attrs[WORKER_ATTR])
                return popped, False
        # The count and the new trial with its worker record and first heartbeat: one transaction on PostgreSQL
        # (claim_lock), an indexed count then one write transaction on SQLite; Optuna's create_new_trial took a
        # transaction of its own, the record another and the first beat a third (2026-12-08).
        with claim_lock(self._url, self._engine) as conn:
            if conn is not None:  # PostgreSQL: no trial is added to the study, by anyone, between count and insert
                _compat.lock_study_row(conn, sid)
            counted, n_waiting = count_in_database(self._engine, sid, conn)
            if counted >= self._target:
                raise _NoSlot()
            popped = _pop_waiting(storage, sid) if n_waiting else None
            if popped is not None:
                # still under the lock: recover_lost_trials (also under it) never sees a RUNNING trial without its
                # worker
                storage.set_trial_user_attr(popped, WORKER_ATTR, attrs[WORKER_ATTR])
                return popped, False
            beat = self._heartbeat is not None
            if conn is not None:
                trial = _compat.insert_running_trial(conn, sid, attrs, heartbeat=beat)
            else:
                with self._engine.begin() as own:
                    trial = _compat.insert_running_trial(own, sid, attrs, heartbeat=beat)
        _compat.cache_new_trial(storage, sid, trial)
        return _compat.trial_id(trial), beat

    def trial_done(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """An Optuna callback, first of those a worker runs: the trial is told; an interrupt from now on is not its.
        (Without other callbacks :meth:`ask` says so, and Optuna does not read the told trial back for them.)"""
        self.current = None

    def close(self) -> None:
        """The worker is done: its heartbeat thread ends."""
        if self._heartbeat is not None:
            self._heartbeat.close()


def _fail_claimed(storage: optuna.storages.BaseStorage, trial_id: int, error: str) -> None:
    """FAIL a claimed trial that never reached the objective, with ``error`` (it counts, as any failed trial)."""
    storage.set_trial_user_attr(trial_id, _attrs.ERROR, error)
    storage.set_trial_state_values(trial_id, TrialState.FAIL)


def _running_trial(user_attrs: dict[str, Any]) -> FrozenTrial:
    """The template of a new RUNNING trial (``storage.create_new_trial(..., template_trial=...)``)."""
    return FrozenTrial(
        number=-1,  # the storage numbers it
        state=TrialState.RUNNING,
        value=None,
        values=None,
        datetime_start=datetime.datetime.now(),
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs=user_attrs,
        system_attrs={},
        intermediate_values={},
        trial_id=-1,
    )


def _pop_waiting(storage: optuna.storages.BaseStorage, study_id: int) -> int | None:
    """Set an enqueued (WAITING) trial RUNNING, as ``Study.ask`` does; its id, or None if another worker took each."""
    for t in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if storage.set_trial_state_values(_compat.trial_id(t), state=TrialState.RUNNING):
                return _compat.trial_id(t)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


def _record_interrupt(study: ClaimingStudy, e: BaseException) -> None:
    """The trial running when a Ctrl-C / SIGTERM arrived: FAIL with the reason, configuration enqueued again."""
    trial = study.current
    if trial is None:
        return
    frozen = _compat.study_storage(study).get_trial(_compat.trial_id(trial))
    reason = interrupted_reason(e)
    if frozen.state == TrialState.RUNNING:
        fail_trial(study, _compat.trial_id(trial), reason)
    elif frozen.state == TrialState.FAIL and _attrs.ERROR not in frozen.user_attrs:
        mark_failed(study, frozen, reason)
    elif is_requeued(frozen):  # the objective recorded the interruption and its step: run the configuration again
        requeue(study, frozen)


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs, picklable: it may run in another process, on another machine (Ray)."""

    spec: StudySpec
    storage_url: str
    study_name: str
    seed: int
    target: int | None = None  # None: the study's stored target (else the file's n_trials)
    cpus: tuple[int, ...] | None = None  # pin this worker process (and so its trial processes) to these cores
    data_dir: str | None = None
    cache_dir: str | None = None
    max_compute_s: float | None = None  # stop once the run's trials (every worker's) spent this many CPU seconds
    since: datetime.datetime | None = None  # when the run started (its trials: those started since); None: now
    opened: bool = False  # the launcher opened the study just now (open_for_workers): load it, nothing more


@signals_deferred()  # a signal while the study is created or loaded is raised once that is done
def open_for_workers(
    spec: StudySpec, url: str, study_name: str, seed: int, *, n_trials: int | None = None
) -> tuple[optuna.Study, int]:
    """Create or load the study under the database lock (safe when N workers start at once on a new database),
    with the step-metrics table, the lost-trial callback, and lost trials recovered."""

    with database_lock(url):
        study, n_existing = open_study(spec, url, study_name, seed, n_trials=n_trials)
        install_lost_trial_callback(_compat.study_storage(study))
        create_table(url)  # now, not concurrently at the first step of N workers
        lost = recover_lost_trials(study)
        retried = retry_database_failures(study)
    if retried:
        _log.info(
            "%d trial(s) the database failed under (%s) run again",
            len(retried),
            ", ".join(f"#{n}" for n in retried),
        )
    if lost:
        _log.info(
            "failed %d lost trial(s) of a gone worker (%s); their configurations run again",
            len(lost),
            ", ".join(f"#{n}" for n in lost),
        )
    return study, n_existing


@signals_deferred()  # Ctrl-C / SIGTERM raised at safe points only, never inside a storage call (sysprune._signals)
def run_worker(
    cfg: WorkerConfig,
    callbacks: Sequence[Callback] = (),
    on_start: Callable[[optuna.Study, int, int], None] | None = None,
    *,
    study: optuna.Study | None = None,
) -> int:
    """Run trials of the study until it holds its target; returns how many this worker ran (asked for).
    ``on_start(study, counted, target)`` is called once the study is open. ``study``: already opened by
    :func:`open_for_workers` in this process (else it is opened here).

    KeyboardInterrupt (and :class:`Terminated`) propagate after the running trial is recorded and requeued.
    """

    started = datetime.datetime.now()
    spec = cfg.spec
    import_plugins(spec.plugins)  # a worker started by spawn or Ray: its registrations (a policy, a metric) first
    dataset_path = prepare_dataset(spec, cfg.seed, data_dir=cfg.data_dir, cache_dir=cfg.cache_dir)
    if cfg.cpus is not None:
        os.sched_setaffinity(0, cfg.cpus)  # before the fork server starts: it and every trial process inherit it
    if study is None and cfg.opened:  # a worker of `run --workers`: its launcher created and checked the study
        # ... so the server was reached a moment ago: a refused connection (say, out of connection slots while
        # the other workers start) is waited for, as it would be mid-run, not an error at once (_reconnect.py)
        reached(cfg.storage_url)
        study = load_opened_study(spec, cfg.storage_url, cfg.study_name)
        install_lost_trial_callback(_compat.study_storage(study))
    elif study is None:
        study, _ = open_for_workers(spec, cfg.storage_url, cfg.study_name, cfg.seed)
    with database_lock(cfg.storage_url):
        number = register_worker(study)
        target = cfg.target if cfg.target is not None else (stored_target(study) or spec.n_trials)
        counted = count_in_storage(study)
    if on_start is not None:
        on_start(study, counted, target)
    claiming = ClaimingStudy(
        study,
        url=cfg.storage_url,
        target=target,
        me=WorkerIdentity.current(),
        sampler=make_sampler(spec, worker_seed(cfg.seed, number)),
    )
    family = get_model(spec.model)  # a plugin's or a module's model: imported here (a torch import shows)
    preload(
        threads=spec.trial.threads,
        torch=needs("torch", family.requires, "torch" in sys.modules),
        sklearn=needs("sklearn", family.requires, uses_module(family.create, "sklearn")),
    )
    _log.debug("worker %d (pid %d, cpus %s): fork server ready in %.2f s", number, os.getpid(), cfg.cpus, warm_up())
    inner = Objective(spec, str(dataset_path), cfg.seed)
    objective = WorkerCompute(inner)  # worker_cpu_s per trial, written with the trial's other attrs:
    inner.worker_cpu = objective.charge
    budget = [] if cfg.max_compute_s is None else [ComputeBudget(cfg.max_compute_s, since=cfg.since or started)]
    # No callbacks, no callback list: Optuna then does not read each told trial back from the database.
    every: list[Callback] | None = [claiming.trial_done, *budget, *callbacks] if budget or callbacks else None
    objective.start()
    dropped = 0
    try:
        while True:
            try:
                claiming.optimize(
                    objective,
                    catch=(TrialProcessError,),
                    callbacks=every,
                    gc_after_trial=False,
                    show_progress_bar=False,
                )
            except _NoSlot:
                pass
            except KeyboardInterrupt as e:
                _record_interrupt(claiming, e)  # a second Ctrl-C waits (deferred): the bookkeeping is not cut short
                raise
            except Exception as e:
                dropped += 1
                if dropped > MAX_DROPPED or not _dropped_and_back(claiming, e):
                    raise
                continue  # the trial the connection was lost in runs again; the others are untouched
            return claiming.n_asked
    finally:
        claiming.close()


#: Connections a worker may lose mid-call (the server restarted, then back within the window) before it gives up.
MAX_DROPPED = 5


def _dropped_and_back(study: ClaimingStudy, error: Exception) -> bool:
    """A connection the server dropped in the middle of a call (``error``: a lost-server fault; the connection
    waits in the pool are noticed and waited for, but not one in use at that instant): if the server answers again
    (waiting up to the window), the trial it happened in is failed as :data:`DATABASE_RETRIED` and requeued, and
    True — the worker goes on. False: not such a fault, or the server is still away (the caller raises)."""
    fault = database_fault(error)
    if fault is None or fault.kind != "lost" or study._engine is None:
        return False
    try:
        with study._engine.connect() as conn:  # a new connection: waits for the server (storage._reconnect)
            conn.exec_driver_sql("SELECT 1")
    except Exception:
        return False
    with database_lock(study._url, study._engine):
        trial = study.current
        if trial is not None:
            frozen = _compat.study_storage(study).get_trial(_compat.trial_id(trial))
            if frozen.state == TrialState.RUNNING:
                fail_trial(study, _compat.trial_id(trial), f"{DATABASE_RETRIED}: lost")
        retry_database_failures(study)
    _log.warning("the database dropped a connection in use; the trial it ran in runs again")
    return True
