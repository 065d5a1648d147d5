"""The fork server every trial process is forked from (it imports the heavy stack once), and where their stderr goes."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
import threading
import types
import time
from collections.abc import Iterator
from typing import Any

from sysprune._compat import forkserver_pid
from sysprune._signals import interruptible
from sysprune._compat import popen_class as _popen_class
from sysprune.exceptions import TrialProcessError

PRELOAD = ["sysprune.trial._preload"]
#: The optional stacks the fork server imports only for a study whose model needs them, and the environment variable
#: that says so ("0": without it; unset: with it when installed), read by ``_preload`` in the server, which inherits
#: the worker's environment.
PRELOAD_ENV = {"torch": "SYSPRUNE_PRELOAD_TORCH", "sklearn": "SYSPRUNE_PRELOAD_SKLEARN"}
PRELOAD_TORCH_ENV = PRELOAD_ENV["torch"]

#: Set in the fork server's environment to the trial processes' thread count (``[trial] threads``) when the worker
#: said it (:func:`preload`), with the BLAS/OpenMP variables below: numpy's OpenBLAS, torch's OpenMP and MKL then
#: load with pools of that size, and a trial process need not resize them (``_child._pin_threads``).
TRIAL_THREADS_ENV = "SYSPRUNE_TRIAL_THREADS"
#: The native thread pools' variables, read when each library loads.
THREAD_POOL_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

_CTX: Any = None
#: The fork server's pid -> the PRELOAD_ENV values (and TRIAL_THREADS_ENV) it started with.
_started_with: dict[int, dict[str, str]] = {}
#: The trial processes' thread count the next fork server starts with (None: left to the libraries' defaults).
_threads: int | None = None
_POPEN: Any = None


class _Handle(mp.context.ForkServerProcess):
    """A fork-server process started through :func:`_popen_class` (picklable: defined at module level)."""

    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        global _POPEN
        if _POPEN is None:
            _POPEN = _popen_class()
        return _POPEN(process_obj)


def context() -> Any:
    """The fork-server multiprocessing context (started lazily; the server imports torch + scikit-learn once)."""
    global _CTX
    if _CTX is None:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        _CTX = ctx
    return _CTX


class _StderrCapture:
    """Where the fork server and its trial processes write stderr: one unlinked temporary file per worker.

    The file is opened with O_APPEND and handed to the fork server as its fd 2 when it starts (every trial process
    inherits it); the parent keeps its own descriptor to read it, and empties it when no trial process of this
    worker is running, so it never grows beyond what the trials of the moment wrote.
    """

    def __init__(self) -> None:
        import tempfile

        fd, path = tempfile.mkstemp(prefix="sysprune-trial-stderr-")
        os.close(fd)
        self.fd = os.open(path, os.O_RDWR | os.O_APPEND)
        os.unlink(path)
        self._lock = threading.Lock()
        self._live = 0

    def begin(self) -> int:
        """A trial process starts: the offset its stderr will begin at."""
        with self._lock:
            if self._live == 0:
                os.ftruncate(self.fd, 0)
            self._live += 1
            return os.fstat(self.fd).st_size

    def end(self) -> None:
        with self._lock:
            self._live = max(0, self._live - 1)

    @property
    def live(self) -> int:
        """Trial processes of this worker between :meth:`begin` and :meth:`end`."""
        return self._live

    def is_stderr_of(self, pid: int) -> bool:
        """Whether process ``pid`` writes its stderr to this file."""
        try:
            theirs = os.stat(f"/proc/{pid}/fd/2")
        except OSError:
            return False
        ours = os.fstat(self.fd)
        return (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino)

    def tail(self, offset: int, *, lines: int = 6, max_bytes: int = 32768) -> list[str]:
        """The last lines written since ``offset``, condensed by :func:`condense_stderr`."""
        size = os.fstat(self.fd).st_size
        start = max(offset, size - max_bytes)
        text = os.pread(self.fd, max(0, size - start), start).decode("utf-8", "replace")
        return condense_stderr(text.splitlines())[-lines:]


def condense_stderr(lines: list[str], *, width: int = 200) -> list[str]:
    """Stderr lines worth quoting: blank lines and faulthandler's list of extension modules dropped, a
    faulthandler stack ("most recent call first") cut to its first frame, each line cut to ``width``."""
    out: list[str] = []
    frames = "no"  # "no" | "first" (keep the next frame) | "rest" (drop frames)
    for line in lines:
        text = line.rstrip()
        if not text.strip() or text.startswith("Extension modules:"):
            continue
        is_frame = text.lstrip().startswith("File ")
        if "(most recent call first)" in text:
            frames = "first"
        elif is_frame and frames == "first":
            frames = "rest"
        elif is_frame and frames == "rest":
            continue
        else:
            frames = "no"
        out.append(text if len(text) <= width else text[: width - 3] + "...")
    return out


_CAPTURE: _StderrCapture | None = None


def _capture() -> _StderrCapture:
    global _CAPTURE
    if _CAPTURE is None:
        _CAPTURE = _StderrCapture()
    return _CAPTURE


def _ensure_server() -> None:
    """Start the fork server if it is not running, with the stderr capture file as its fd 2.

    multiprocessing starts the server with this process's fd 2, so fd 2 points at the capture file for the
    moment that takes (nothing is swapped while the server runs). A server started elsewhere in this process
    without the capture file is replaced when no trial process of this worker uses it. The resource tracker is
    started first, with the real stderr (its warnings are the worker's business).
    """
    from multiprocessing import forkserver, resource_tracker

    context()
    cap = _capture()
    pid = forkserver_pid()
    if pid is not None and _running(pid):
        if (cap.is_stderr_of(pid) and not _lacks_a_stack(pid)) or cap.live > 1:
            return  # capturing already (or in use by another trial process of this worker: left alone)
        # Started elsewhere, without the capture file (a test, a user's own forkserver process), or without a
        # stack (torch, scikit-learn) a study of this process now needs: restart it.
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.005)
    resource_tracker.ensure_running()
    saved = os.dup(2)
    try:
        os.dup2(cap.fd, 2)
        with _server_environment():
            forkserver.ensure_running()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    started = forkserver_pid()
    if started is not None:
        _started_with[started] = {env: os.environ.get(env, "1") for env in PRELOAD_ENV.values()}
        _started_with[started][TRIAL_THREADS_ENV] = str(_threads)


@contextlib.contextmanager
def _server_environment() -> Iterator[None]:
    """The environment the fork server starts with: this process's, plus — when the worker set the trials' thread
    count — the thread-pool variables at that count, for the moment the server is started (this process's own
    environment is given back: a script that called ``run_study`` keeps its pools' defaults).

    Without them numpy's OpenBLAS loaded in the server with one thread per core, and a trial process of one thread
    inherited that pool: its extra thread busy-waited after each BLAS call on the trial's core until threadpoolctl
    shrank the pool at step 0 — ~100 ms of CPU in step 0 of a trial that only waits, 15-30 % of a digits trial's
    CPU (2026-12-07), and time taken from the trial's own thread on its pinned core."""
    if _threads is None:
        yield
        return
    names = (TRIAL_THREADS_ENV, *THREAD_POOL_VARS)
    before = {name: os.environ.get(name) for name in names}
    os.environ.update({name: str(_threads) for name in names})
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _lacks_a_stack(pid: int) -> bool:
    """Whether the fork server ``pid`` started without a stack this process now asks for, or with another thread
    count than the one trials now ask for."""
    started = _started_with.get(pid, {})
    if _threads is not None and started.get(TRIAL_THREADS_ENV) != str(_threads):
        return True
    return any(started.get(env) == "0" and os.environ.get(env) == "1" for env in PRELOAD_ENV.values())


def _running(pid: int) -> bool:
    """Whether ``pid`` is alive and not a zombie (without reaping it: multiprocessing does that)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _start(target: Any, *args: Any) -> _Handle:
    _ensure_server()
    p = _Handle(target=target, args=args, daemon=True)
    _fork(p)
    return p


@interruptible
def _fork(p: _Handle) -> None:
    """Ask the fork server for the process (it answers once it has imported the stack: a safe point for a signal)."""
    p.start()


def needs(stack: str, requires: tuple[str, ...], loaded: bool) -> bool:
    """Whether trial processes of a model need ``stack`` ("torch", "sklearn") preloaded: its family requires it
    (``requires=("torch",)``, as the built-in families declare) or its module imported it (``loaded``)."""
    return stack in requires or loaded


def uses_module(fn: Any, stack: str) -> bool:
    """Whether the module that defines ``fn`` (a model's ``create``) refers to ``stack`` at its top level: imports
    it, or one of its modules, classes or functions (``from sklearn.linear_model import SGDClassifier``)."""
    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    for value in vars(module).values() if module is not None else ():
        name = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
        if isinstance(name, str) and name.split(".")[0] == stack:
            return True
    return False


def preload(*, threads: int | None = None, **stacks: bool) -> None:
    """Before the fork server starts: which optional stacks it imports (``preload(torch=False, sklearn=True)``). A
    study that never uses torch saves ~3 s of CPU and ~600 MB per worker, one without scikit-learn ~1 s and ~60 MB.
    ``threads``: the trial processes' thread count, which the server's native thread pools are sized to (see
    :func:`_server_environment`). A server already running is left as it is, unless it lacks a stack now asked for
    or was sized for another thread count (it is then restarted)."""
    global _threads
    for name, needed in stacks.items():
        os.environ[PRELOAD_ENV[name]] = "1" if needed else "0"
    if threads is not None:
        _threads = int(threads)


def warm_up() -> float:
    """Start the fork server now (seconds it took), so the first trial's start is not charged for it.

    Raises:
        TrialProcessError: the fork server could not start a process (the message quotes its stderr).
    """
    t = time.perf_counter()
    cap = _capture()
    at = cap.begin()
    try:
        _start(_noop).join()
    except (OSError, EOFError) as e:
        raise TrialProcessError(_server_failed(e, cap.tail(at))) from None
    finally:
        cap.end()
    return time.perf_counter() - t


def _server_failed(e: BaseException, stderr_lines: list[str]) -> str:
    return f"the fork server could not start the trial process ({type(e).__name__}: {e})" + (
        "; last stderr: " + " | ".join(stderr_lines) if stderr_lines else ""
    )


def _noop() -> None:
    pass
