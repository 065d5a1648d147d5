"""Several workers on one study: a safe start, an exact trial count, lost trials retried, one CPU set each.

A *worker* is a process that runs trials of a study one after the other (each in its own measured trial process,
from the worker's own fork server). ``sysprune run`` is one worker, or launches ``--workers N`` of them;
``sysprune worker`` joins a study from another shell or machine; ``--ray`` runs them as Ray tasks (``_ray.py``).
They coordinate through the study's database only:

* **One lock per database** (:func:`database_lock`): PostgreSQL's session advisory lock, or an exclusive ``flock`` on
  a file beside an SQLite database. It is held for short, bounded pieces of work only: creating the schema and the
  study (so N workers started at once on a new database do not race), and claiming a trial slot. The operating
  system (or the server, when the connection drops) releases it when its holder dies.
* **An exact trial count**: ``n_trials`` is a total for the study. Under the lock a worker counts the trials that
  count (:func:`counts_toward_target`: every trial that is not WAITING, except lost or interrupted ones, which are
  retried) and only then asks Optuna for a trial, still under the lock: the count and the new RUNNING trial are one
  atomic step, so no interleaving of workers can exceed the target, and no trial is created only to be thrown away.
* **Lost trials**: each trial records who runs it (user attr ``sysprune:worker``: host, boot id, pid, the pid's
  start time, its cores). When a worker starts, RUNNING trials of a worker on this host whose process is gone are failed at
  once with the reason ``worker lost``; on other hosts a dead worker's trials are found by Optuna's heartbeat
  after its grace period. Either way the trial is FAIL with ``error = "worker lost"`` and its configuration is
  enqueued again (as Optuna's ``RetryHeartbeatStaleTrialCallback`` does), and it does not count toward n_trials.
  A trial stopped by Ctrl-C or SIGTERM is recorded the same way (``interrupted (SIGINT)``) and retried on resume.
* **Seeds**: every worker registers in the study and gets a number unique to it (0, 1, 2, ... in the order they
  start); its sampler seed is derived from the study seed and that number, so workers never draw the same
  parameters by seed arithmetic, and a resumed study does not replay its first draws.
* **CPU sets**: with several local workers, worker i pins itself (and so its fork server and trial processes) to
  cores ``i*threads .. i*threads+threads-1``; by default N is limited to what gives each trial its own cores.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sysprune import _attrs
from sysprune._logging import get_logger
from sysprune._spec import SpecError, StudySpec

_log = get_logger(__name__)

LOST = "worker lost"
INTERRUPTED = "interrupted"  # + " (SIGINT)" / " (SIGTERM)"
WORKER_ATTR = "sysprune:worker"
TARGET_KEY = "sysprune:n_trials"  # study system attr: the study's total of trials that count
WORKERS_KEY = "sysprune:workers"  # study system attr: how many workers have registered
EXIT_TERMINATED = 143

Callback = Callable[[optuna.Study, FrozenTrial], None]


class TooManyWorkers(SpecError):
    """More workers asked for than the machine has cores for one trial each (without --oversubscribe)."""


class WorkerFailed(RuntimeError):
    """A worker process ended with an error (its own message was printed by it)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the running trial is stopped and recorded, the study kept."""


def raise_terminated(signum: int, frame: Any) -> None:
    """A SIGTERM handler: raise :class:`Terminated` in the main thread (``signal.signal(SIGTERM, ...)``)."""
    raise Terminated()


# ------------------------------------------------------------------------------------------------- the lock


def _lock_key(url: str) -> int:
    return int.from_bytes(hashlib.sha256(b"sysprune:" + url.encode()).digest()[:8], "little", signed=True)


@contextlib.contextmanager
def database_lock(url: str, engine: Any = None) -> Iterator[None]:
    """Hold sysprune's lock on the database of ``url`` (see the module docstring).

    SQLite: an exclusive ``flock`` on ``<database>-sysprune.lock``; PostgreSQL: ``pg_advisory_lock`` on a
    connection of ``engine`` (a new one when None). Other databases and in-memory SQLite: no lock (one worker).
    If the lock cannot be taken because the database cannot be reached, the block runs unlocked: opening the
    storage then reports why, in one line.
    """
    import sqlalchemy

    try:
        parsed = sqlalchemy.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        yield
        return
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        db = parsed.database
        if not db or db == ":memory:" or db.startswith("file:"):
            yield
            return
        import fcntl

        path = Path(db + "-sysprune.lock")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock
        return
    if backend == "postgresql":
        own = engine is None
        try:
            if own:
                engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
            conn = engine.connect()
        except Exception:  # unreachable, no driver, ...: make_storage says why
            yield
            return
        key = _lock_key(str(parsed.render_as_string(hide_password=True)))
        try:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            conn.commit()
            yield
        finally:
            try:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
            finally:
                conn.close()
                if own:
                    engine.dispose()
        return
    yield


# ------------------------------------------------------------------------------------------- counting trials


def is_requeued(trial: FrozenTrial) -> bool:
    """A FAIL trial whose configuration was enqueued again: lost with its worker, or interrupted."""
    if trial.state != TrialState.FAIL:
        return False
    error = trial.user_attrs.get(_attrs.ERROR)
    return isinstance(error, str) and (error == LOST or error.startswith(INTERRUPTED))


def counts_toward_target(trial: FrozenTrial) -> bool:
    """Trials that count toward ``n_trials``: running or finished, not WAITING, not lost/interrupted."""
    return trial.state != TrialState.WAITING and not is_requeued(trial)


def count(trials: Sequence[FrozenTrial]) -> int:
    return sum(counts_toward_target(t) for t in trials)


def _rdb(storage: Any) -> Any:
    """The RDBStorage behind Optuna's caching wrapper (reads from it are never stale)."""
    return getattr(storage, "_backend", storage)


def count_in_storage(study: optuna.Study) -> int:
    """How many of the study's trials count toward its target, read from the database (not a cache)."""
    return count(_rdb(study._storage).get_all_trials(study._study_id, deepcopy=False))


def stored_target(study: optuna.Study) -> int | None:
    value = study._storage.get_study_system_attrs(study._study_id).get(TARGET_KEY)
    return int(value) if value is not None else None


def set_target(study: optuna.Study, target: int) -> None:
    study._storage.set_study_system_attr(study._study_id, TARGET_KEY, int(target))


# ---------------------------------------------------------------------------------------------- who runs what


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
        return {"host": self.host, "pid": self.pid, "started": self.started, "cpus": available_cpus()}

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
    try:
        return WorkerIdentity(str(w["host"]), int(w["pid"]), float(w["started"]))
    except (TypeError, KeyError, ValueError):
        return None


def _set_attr_of_finished_trial(storage: optuna.storages.RDBStorage, trial_id: int, key: str, value: Any) -> None:
    """Optuna refuses attrs on a finished trial; the reason of a trial failed by the heartbeat goes in directly."""
    import sqlalchemy

    with _rdb(storage).engine.begin() as conn:
        params = {"t": trial_id, "k": key, "v": json.dumps(value)}
        done = conn.execute(sqlalchemy.text("UPDATE trial_user_attributes SET value_json = :v "
                                            "WHERE trial_id = :t AND key = :k"), params)  # fmt: skip
        if done.rowcount == 0:
            conn.execute(sqlalchemy.text("INSERT INTO trial_user_attributes (trial_id, key, value_json) "
                                         "VALUES (:t, :k, :v)"), params)  # fmt: skip


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
            system_attrs={"failed_trial": trial.system_attrs.get("failed_trial", trial.number),
                          "retry_history": history},
        )
    )  # fmt: skip


class LostTrialCallback:
    """``heartbeat_stale_trial_callback`` of the storage: a trial Optuna failed as stale gets its reason and is
    retried."""

    def __init__(self) -> None:
        self.failed: list[int] = []  # numbers of the trials it was called for

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        mark_failed(study, trial, LOST)
        self.failed.append(trial.number)


def mark_failed(study: optuna.Study, trial: FrozenTrial, reason: str) -> None:
    """``trial`` has just been failed by this process: record ``reason`` and enqueue its configuration again."""
    _set_attr_of_finished_trial(study._storage, trial._trial_id, _attrs.ERROR, reason)
    requeue(study, trial)
    _log.debug("trial %d failed (%s); its configuration will run again", trial.number, reason)


def fail_trial(study: optuna.Study, trial_id: int, reason: str) -> bool:
    """Fail a RUNNING trial with ``reason`` and requeue it; False when another process finished it first."""
    storage = study._storage
    try:
        if not storage.set_trial_state_values(trial_id, TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    mark_failed(study, storage.get_trial(trial_id), reason)
    return True


def recover_lost_trials(study: optuna.Study, here: str | None = None) -> list[int]:
    """Fail (``worker lost``) and requeue the RUNNING trials whose worker is gone: on this host, those whose
    recorded process no longer exists (at once); anywhere, those whose heartbeat is stale. Returns their numbers.
    Call it under :func:`database_lock`."""
    import warnings

    here = here or host_id()
    lost = []
    backend = _rdb(study._storage)
    for t in backend.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        w = _recorded_worker(t)
        if w is not None and w.host == here and w.is_gone() and fail_trial(study, t._trial_id, LOST):
            lost.append(t.number)
    callback = backend.get_heartbeat_stale_trial_callback()
    n_before = len(callback.failed) if isinstance(callback, LostTrialCallback) else 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # Optuna also runs this before each trial of optimize(); the storage's LostTrialCallback marks and
        # requeues what it fails.
        optuna.storages.fail_stale_trials(study)
    if isinstance(callback, LostTrialCallback):
        lost.extend(callback.failed[n_before:])
    return sorted(lost)


def install_lost_trial_callback(storage: Any) -> None:
    backend = _rdb(storage)
    if isinstance(backend, optuna.storages.RDBStorage):
        backend.heartbeat_stale_trial_callback = LostTrialCallback()


# ------------------------------------------------------------------------------------------- seeds and cores


def register_worker(study: optuna.Study) -> int:
    """A number unique to this worker in the study (0, 1, ...). Call it under :func:`database_lock`."""
    storage = study._storage
    n = int(storage.get_study_system_attrs(study._study_id).get(WORKERS_KEY, 0))
    storage.set_study_system_attr(study._study_id, WORKERS_KEY, n + 1)
    return n


def worker_seed(seed: int, worker_number: int) -> int:
    """The sampler seed of worker ``worker_number`` of a study seeded ``seed``: distinct per worker."""
    return int.from_bytes(hashlib.sha256(f"worker:{seed}:{worker_number}".encode()).digest()[:4], "little")


def available_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def cpu_sets(n_workers: int, threads: int, *, cpus: Sequence[int] | None = None,
             oversubscribe: bool = False) -> list[tuple[int, ...]]:  # fmt: skip
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
    """An ``optuna.Study`` whose :meth:`ask` first claims a slot: under the database lock it counts the trials
    that count and creates (or pops a WAITING) trial only below the target, recording this worker on it."""

    def __init__(self, study: optuna.Study, *, url: str, target: int, sampler: optuna.samplers.BaseSampler,
                 me: WorkerIdentity) -> None:  # fmt: skip
        super().__init__(study_name=study.study_name, storage=study._storage, sampler=sampler, pruner=study.pruner)
        self._url, self._target, self._me = url, target, me
        self.current: optuna.Trial | None = None
        self.n_asked = 0

    def ask(self, fixed_distributions: dict | None = None) -> optuna.Trial:
        engine = getattr(_rdb(self._storage), "engine", None)
        # A Ctrl-C / SIGTERM waits until the new trial is recorded here (it is then failed and requeued), so no
        # RUNNING trial is left without an owner to tell its worker is gone.
        with _signals_deferred(), database_lock(self._url, engine):
            if count_in_storage(self) >= self._target:
                raise _NoSlot()
            trial = super().ask(fixed_distributions)
            trial.set_user_attr(WORKER_ATTR, self._me.record())
            self.current = trial
            self.n_asked += 1
        return trial

    def trial_done(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """An Optuna callback: the trial is told; an interrupt from now on is not its."""
        self.current = None


def interrupted_reason(e: BaseException) -> str:
    return f"{INTERRUPTED} ({'SIGTERM' if isinstance(e, Terminated) else 'SIGINT'})"


def _record_interrupt(study: ClaimingStudy, e: BaseException) -> None:
    """The trial running when a Ctrl-C / SIGTERM arrived: FAIL with the reason, configuration enqueued again."""
    trial = study.current
    if trial is None:
        return
    frozen = study._storage.get_trial(trial._trial_id)
    reason = interrupted_reason(e)
    if frozen.state == TrialState.RUNNING:
        fail_trial(study, trial._trial_id, reason)
    elif frozen.state == TrialState.FAIL and _attrs.ERROR not in frozen.user_attrs:
        mark_failed(study, frozen, reason)


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


def open_for_workers(spec: StudySpec, url: str, study_name: str, seed: int) -> tuple[optuna.Study, int]:
    """Create or load the study under the database lock (safe when N workers start at once on a new database),
    with the step-metrics table, the lost-trial callback, and lost trials recovered."""
    from sysprune._runner import open_study
    from sysprune._store import MetricStore

    with database_lock(url):
        study, n_existing = open_study(spec, url, study_name, seed)
        install_lost_trial_callback(study._storage)
        MetricStore(url)  # creates sysprune_step_metrics now, not concurrently at the first step of N workers
        lost = recover_lost_trials(study)
    if lost:
        _log.info("failed %d lost trial(s) of a gone worker (%s); their configurations run again",
                  len(lost), ", ".join(f"#{n}" for n in lost))  # fmt: skip
    return study, n_existing


def run_worker(cfg: WorkerConfig, callbacks: Sequence[Callback] = (),
               on_start: Callable[[optuna.Study, int, int], None] | None = None) -> int:  # fmt: skip
    """Run trials of the study until it holds its target; returns how many this worker ran (asked for).
    ``on_start(study, counted, target)`` is called once the study is open.

    KeyboardInterrupt (and :class:`Terminated`) propagate after the running trial is recorded and requeued.
    """
    from sysprune._data import prepare
    from sysprune._runner import Objective, make_sampler
    from sysprune._trial_process import TrialProcessError, warm_up

    spec = cfg.spec
    d = spec.dataset
    dataset_path = prepare(d.name, seed=cfg.seed, subsample=d.subsample, val_fraction=d.val_fraction,
                           test_fraction=d.test_fraction, data_dir=cfg.data_dir, cache_dir=cfg.cache_dir)  # fmt: skip
    if cfg.cpus is not None:
        os.sched_setaffinity(0, cfg.cpus)  # before the fork server starts: it and every trial process inherit it
    study, _ = open_for_workers(spec, cfg.storage_url, cfg.study_name, cfg.seed)
    with database_lock(cfg.storage_url):
        number = register_worker(study)
        target = cfg.target if cfg.target is not None else (stored_target(study) or spec.n_trials)
        counted = count_in_storage(study)
    if on_start is not None:
        on_start(study, counted, target)
    claiming = ClaimingStudy(study, url=cfg.storage_url, target=target, me=WorkerIdentity.current(),
                             sampler=make_sampler(spec, worker_seed(cfg.seed, number)))  # fmt: skip
    _log.debug("worker %d (pid %d, cpus %s): fork server ready in %.2f s", number, os.getpid(), cfg.cpus, warm_up())
    try:
        claiming.optimize(Objective(spec, str(dataset_path), cfg.seed), catch=(TrialProcessError,),
                          callbacks=[claiming.trial_done, *callbacks], gc_after_trial=False,
                          show_progress_bar=False)  # fmt: skip
    except _NoSlot:
        pass
    except KeyboardInterrupt as e:
        with _signals_ignored():  # a second Ctrl-C must not cut the bookkeeping short
            _record_interrupt(claiming, e)
        raise
    return claiming.n_asked


# ----------------------------------------------------------------------------------------- local worker processes


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """SIGINT and SIGTERM ignored for the block (main thread only), then the previous handlers back."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM blocked in the main thread for the block and delivered when it ends (a worker has no
    other thread that could take them meanwhile: Optuna's heartbeat thread runs only during a trial)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _die_with_parent(parent: int) -> None:
    """Linux: SIGTERM this process when the launcher dies (even by kill -9), so no worker outlives it."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if os.getppid() != parent:  # the launcher died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _worker_process(cfg: WorkerConfig, launcher: int, verbosity: int) -> None:
    """Entry of a worker process started by :func:`launch` (multiprocessing, spawn)."""
    signal.signal(signal.SIGTERM, raise_terminated)
    optuna.logging.set_verbosity(verbosity)
    from sysprune._logging import enable_default_handler

    enable_default_handler("DEBUG" if verbosity <= optuna.logging.DEBUG else "INFO")
    import sys

    try:
        _die_with_parent(launcher)
        run_worker(cfg)
    except Terminated:
        sys.exit(EXIT_TERMINATED)
    except KeyboardInterrupt:
        sys.exit(130)
    except SpecError as e:  # e.g. the study file changed under a running study
        print(f"sysprune: worker {os.getpid()}: error: {str(e).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)


def launch(cfgs: Sequence[WorkerConfig], *, poll: Callable[[], None] | None = None, poll_s: float = 1.0) -> None:
    """Run one worker process per config and wait for them, calling ``poll`` (progress) about every ``poll_s``.

    Ctrl-C / SIGTERM: the workers record their running trials and stop; the exception is re-raised here.

    Raises:
        WorkerFailed: a worker ended with an error.
    """
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    verbosity = optuna.logging.get_verbosity()
    procs = [ctx.Process(target=_worker_process, args=(cfg, os.getpid(), verbosity), name=f"sysprune-worker-{i}")
             for i, cfg in enumerate(cfgs)]  # fmt: skip
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs):
            for p in procs:
                p.join(poll_s / len(procs))
            if poll is not None:
                poll()
    except KeyboardInterrupt as e:
        sig = signal.SIGTERM if isinstance(e, Terminated) else signal.SIGINT
        with _signals_ignored():
            for p in procs:
                if p.is_alive():
                    os.kill(p.pid, sig)
            for p in procs:
                p.join()
        raise
    if poll is not None:
        poll()
    failed = [(i, p.exitcode) for i, p in enumerate(procs) if p.exitcode != 0]
    if failed:
        raise WorkerFailed("; ".join(f"worker {i} exited with status {code}" for i, code in failed))


class TrialFeed:
    """Calls ``callbacks`` (Optuna-style) once for each trial of ``study`` that finishes after it was made, as
    read from the database: the trials of workers in other processes or on other machines included."""

    _FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)

    def __init__(self, study: optuna.Study, callbacks: Sequence[Callback]) -> None:
        self.study, self.callbacks = study, list(callbacks)
        self.seen = {t.number for t in self._finished()}

    def _finished(self) -> list[FrozenTrial]:
        return _rdb(self.study._storage).get_all_trials(self.study._study_id, deepcopy=False, states=self._FINISHED)

    def poll(self) -> None:
        if not self.callbacks:
            return
        new = [t for t in self._finished() if t.number not in self.seen]
        for t in sorted(new, key=lambda t: (t.datetime_complete or t.datetime_start, t.number)):
            self.seen.add(t.number)
            for callback in self.callbacks:
                callback(self.study, t)
