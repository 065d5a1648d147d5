"""Local worker processes: ``sysprune run --workers N`` starts N of them (forked from one fork server per launch,
:mod:`sysprune.study._worker_server`), waits for them and feeds the trials they finish — read from the database — to
the callbacks of the process that launched them.

Each process runs :func:`sysprune.study._workers.run_worker` on its own CPU set; it dies with its launcher (even on
``kill -9``), and a Ctrl-C or SIGTERM of the launcher reaches every worker, which records its running trial first.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from sysprune import _compat
from sysprune._logging import enable_default_handler
from sysprune._signals import exit_on_signal
from sysprune.study._interrupts import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated, check, interruptible
from sysprune.exceptions import SyspruneError, WorkerFailed, first_line
from sysprune.study._worker_server import WorkerServer
from sysprune.study._workers import Callback, WorkerConfig, run_worker


def _die_with_parent(parent: int) -> None:
    """Linux: SIGTERM this process when its parent — the launch's worker server, which ends with the launcher —
    dies (even by kill -9), so no worker outlives the launcher."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if os.getppid() != parent:  # the server died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _worker_process(cfg: WorkerConfig, server: int, verbosity: int) -> None:
    """Entry of a worker process started by :func:`launch` (forked by the worker server ``server``). Its signals:
    outside :func:`run_worker` one ends it at once, silently (the launcher prints the line); inside, at safe points."""
    exit_on_signal({signal.SIGINT: "", signal.SIGTERM: ""})
    _compat.forget_inherited_forkserver()  # the server ends with the launcher, not with its last worker
    optuna.logging.set_verbosity(verbosity)

    enable_default_handler("DEBUG" if verbosity <= optuna.logging.DEBUG else "INFO")
    try:
        _die_with_parent(server)
        run_worker(cfg)
    except Terminated:
        sys.exit(EXIT_TERMINATED)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except SyspruneError as e:  # e.g. the study file changed under a running study, a database out of connections
        print(f"sysprune: worker {os.getpid()}: error: {first_line(e)}", file=sys.stderr)
        sys.exit(2)


def launch(cfgs: Sequence[WorkerConfig], *, poll: Callable[[], None] | None = None, poll_s: float = 1.0) -> None:
    """Run one worker process per config and wait for them, calling ``poll`` (progress) about every ``poll_s``.

    Ctrl-C / SIGTERM: the workers record their running trials and stop; the exception is re-raised here.

    Raises:
        WorkerFailed: a worker ended with an error.
    """
    verbosity = optuna.logging.get_verbosity()
    server = WorkerServer()
    procs: list = []
    try:
        try:
            pid = server.start()
            procs = [
                server.process(_worker_process, (cfg, pid, verbosity), f"sysprune-worker-{i}")
                for i, cfg in enumerate(cfgs)
            ]
            for p in procs:
                p.start()  # the first waits for the server's imports (a signal meanwhile is raised below)
        except (OSError, EOFError) as e:
            check()  # a Ctrl-C / SIGTERM that ended the server while it started: that, not the error below
            raise WorkerFailed(f"the worker server could not start a worker ({type(e).__name__}: {e})") from None
        while any(p.is_alive() for p in procs):
            _join_some(procs, poll_s)
            if poll is not None:
                poll()  # reads the database: a signal meanwhile waits for the next join
    except KeyboardInterrupt as e:
        sig = signal.SIGTERM if isinstance(e, Terminated) else signal.SIGINT
        started = [p for p in procs if p.pid is not None]
        for p in started:  # a second signal now is only recorded (sysprune._signals): every worker records its trial
            if p.is_alive():
                os.kill(p.pid, sig)
        for p in started:
            p.join()
        raise
    finally:
        server.stop()
    if poll is not None:
        poll()
    failed = [(i, p.exitcode) for i, p in enumerate(procs) if p.exitcode != 0]
    if failed:
        raise WorkerFailed("; ".join(f"worker {i} exited with status {code}" for i, code in failed))


@interruptible
def _join_some(procs: Sequence, poll_s: float) -> None:
    """Wait up to ``poll_s`` for the worker processes (a Ctrl-C / SIGTERM is raised here at once)."""
    for p in procs:
        p.join(poll_s / len(procs))


class TrialFeed:
    """Calls ``callbacks`` (Optuna-style) once for each trial of ``study`` that finishes after it was made, as
    read from the database: the trials of workers in other processes or on other machines included."""

    _FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)

    def __init__(self, study: optuna.Study, callbacks: Sequence[Callback]) -> None:
        self.study, self.callbacks = study, list(callbacks)
        self.seen = {t.number for t in self._finished()}

    def _finished(self) -> list[FrozenTrial]:
        return _compat.unwrap_storage(_compat.study_storage(self.study)).get_all_trials(
            _compat.study_id(self.study), deepcopy=False, states=self._FINISHED
        )

    def poll(self) -> None:
        if not self.callbacks:
            return
        new = [t for t in self._finished() if t.number not in self.seen]
        for t in sorted(new, key=lambda t: (t.datetime_complete or t.datetime_start, t.number)):
            self.seen.add(t.number)
            for callback in self.callbacks:
                callback(self.study, t)
