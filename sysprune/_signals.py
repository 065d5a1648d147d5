"""Ctrl-C and SIGTERM in a sysprune process: one line and exit 130/143 at any instant, never a storage call cut short.

A signal is handled in one of two ways, depending on what the process is doing:

* **At once** (:func:`exit_on_signal`): from the first line of ``import sysprune`` in the ``sysprune`` command
  (:func:`early`), and wherever the command runs no study: the handler prints one line and ends the process with
  130 (SIGINT) or 143 (SIGTERM). Nothing that could be left half-written is then in progress: a database
  transaction is atomic (SQLite and PostgreSQL roll back what a process that ends did not commit), and no trial of
  this process is RUNNING.
* **Deferred** (:func:`signals_deferred`): while a study runs (``run_study``, ``run_worker``) the handler only
  records the signal; it is raised — :class:`KeyboardInterrupt`, or :class:`Terminated` for SIGTERM — at a *safe
  point*: when the process enters or waits in a function marked :func:`interruptible` (waiting on a trial process,
  preparing a dataset, starting the fork server) or calls :func:`check` (before claiming a trial slot), and when the
  deferred block ends. Never inside a storage call: the running trial is then failed and requeued by the ordinary
  Ctrl-C path. A third signal while one is pending ends the process at once (a storage call that hangs cannot hold
  it forever); its running trial is then left RUNNING for the lost-trial sweep.

Library code that never enters a deferred block keeps Python's behaviour. The handlers are installed in the main
thread only (Python runs signal handlers there).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from types import CodeType, FrameType
from typing import Any, TypeVar

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it
EXIT_TERMINATED = 143  # 128 + SIGTERM

SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: The line printed when a signal ends the command at once, by signal; :func:`exit_on_signal` sets the command's.
_lines: dict[int, str] = {
    signal.SIGINT: "interrupted while starting; nothing was written",
    signal.SIGTERM: "stopped by SIGTERM while starting; nothing was written",
}

_first: int | None = None  # the first signal received in the current deferred block
_raised = False  # whether it was raised (once per block: later ones must not cut the bookkeeping short)
_count = 0  # signals received in the current deferred block
_depth = 0  # nesting of deferred blocks
_saved: dict[int, Any] = {}  # the handlers a deferred block replaced
_safe: set[CodeType] = set()  # code of the functions marked interruptible
_is_command = False

F = TypeVar("F", bound=Callable[..., Any])


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the running trial is stopped and recorded, the study kept."""


def exit_code(e: BaseException) -> int:
    return EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED


def interrupt_for(signum: int) -> KeyboardInterrupt:
    """The exception a signal becomes at a safe point."""
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


# ------------------------------------------------------------------------------------------------ at once


def _exit_now(signum: int) -> None:
    """Print the command's line for ``signum`` and end the process (no Python clean-up: nothing is half-done)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a flush this handler interrupted (re-entrant call), or a closed pipe: not ours to fix
            pass
    line = _lines.get(signum, "interrupted")
    if line:  # "": a worker process of a launcher, which prints the line itself
        with contextlib.suppress(OSError):
            os.write(2, f"\n{line}\n".encode())
    os._exit(EXIT_TERMINATED if signum == signal.SIGTERM else EXIT_INTERRUPTED)


def _exit_handler(signum: int, frame: FrameType | None) -> None:
    _exit_now(signum)


def exit_on_signal(lines: Mapping[int, str] | None = None) -> None:
    """From now on (main thread), SIGINT and SIGTERM end the process at once with one line (``lines``, by signal)
    and exit 130 / 143, except inside a :func:`signals_deferred` block."""
    if lines:
        _lines.update(lines)
    if not _in_main_thread():
        return
    for s in SIGNALS:
        if _depth:  # inside a deferred block: its end puts this handler back
            _saved[s] = _exit_handler
        else:
            signal.signal(s, _exit_handler)


def ignore_signals() -> None:
    """SIGINT and SIGTERM ignored from now on: the command has said all it had to say and is exiting."""
    if _in_main_thread():
        for s in SIGNALS:
            signal.signal(s, signal.SIG_IGN)


def invoked_as_command(argv: list[str] | None = None) -> bool:
    """Whether this interpreter runs the ``sysprune`` command (the console script, or ``python -m sysprune.cli``)."""
    argv = list(getattr(sys, "orig_argv", sys.argv) if argv is None else argv)
    for i, a in enumerate(argv):
        if a == "-m" and i + 1 < len(argv):
            return argv[i + 1] in ("sysprune", "sysprune.cli")
        if a.startswith("-m") and len(a) > 2:
            return a[2:] in ("sysprune", "sysprune.cli")
        if a == "-c":
            return False
    return any(os.path.basename(a) == "sysprune" for a in argv[:2])


_COMMAND_ENV = "SYSPRUNE_COMMAND_PID"  # set by the command for the processes it starts


_FORKSERVER_MAIN = "from multiprocessing.forkserver import main"


def is_command_worker(argv: list[str] | None = None) -> bool:
    """Whether this interpreter is a process the ``sysprune`` command started for its workers, with the command's
    pid in the environment: a spawned one (``--multiprocessing-fork``) or a fork server (``-c "from
    multiprocessing.forkserver import main; ..."``: the one its workers are forked from, and each worker's own)."""
    argv = list(getattr(sys, "orig_argv", sys.argv) if argv is None else argv)  # sys.argv is the parent's there
    started = "--multiprocessing-fork" in argv or any(a.startswith(_FORKSERVER_MAIN) for a in argv)
    return started and bool(os.environ.get(_COMMAND_ENV))


def early() -> None:
    """Called on the first line of ``import sysprune``: in the ``sysprune`` command, a signal from here on ends it
    with one line (nothing is written while it starts); in a worker process the command started (``run --workers``),
    silently with 130 / 143 — its launcher prints the line — until the worker installs its own; library users keep
    Python's own handling."""
    global _is_command
    if not _in_main_thread():
        return
    if invoked_as_command():
        _is_command = True
        os.environ[_COMMAND_ENV] = str(os.getpid())
        exit_on_signal()
    elif is_command_worker():
        exit_on_signal({signal.SIGINT: "", signal.SIGTERM: ""})


def is_command() -> bool:
    """Whether :func:`early` found this process to be the ``sysprune`` command."""
    return _is_command


# ----------------------------------------------------------------------------------------------- deferred


def _deferring_handler(signum: int, frame: FrameType | None) -> None:
    global _first, _count
    _count += 1
    if _first is None:
        _first = signum
    if _count >= 3:  # the third: whatever holds the process, end it (the lost-trial sweep finds its trial)
        _exit_now(_first)
    if _in_safe_frame(frame):
        check()


def _in_safe_frame(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code in _safe:
            return True
        frame = frame.f_back
    return False


def check() -> None:
    """A safe point: raise the signal received in this deferred block, if any and not raised yet."""
    global _raised
    if _first is not None and not _raised:
        _raised = True
        raise interrupt_for(_first)


def pending() -> int | None:
    """The signal waiting for a safe point (None: none)."""
    return _first if not _raised else None


def interruptible(func: F) -> F:
    """Mark ``func`` a safe point: in a deferred block a signal is raised as soon as it arrives while ``func`` (or
    anything it calls) runs, and one already received is raised when ``func`` is called. Only for functions that
    make no storage call."""
    _safe.add(func.__code__)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        check()
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM recorded, not raised, for the block (main thread; blocks nest), except at safe points;
    one still pending when the outermost block ends is raised then. Usable as a decorator."""
    global _depth, _first, _raised, _count
    if not _in_main_thread():
        yield
        return
    if _depth == 0:
        _first, _raised, _count = None, False, 0
        for s in SIGNALS:
            _saved[s] = signal.signal(s, _deferring_handler)
    _depth += 1
    raising = False
    try:
        yield
    except BaseException:
        raising = True
        raise
    finally:
        _depth -= 1
        if _depth == 0:
            for s in SIGNALS:
                previous = _saved.pop(s, None)
                signal.signal(s, signal.SIG_DFL if previous is None else previous)  # None: not set from Python
            signum = _first if not _raised else None
            _first, _raised, _count = None, False, 0
            if signum is not None and not raising:
                raise interrupt_for(signum)
