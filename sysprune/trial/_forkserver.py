"""The fork server every trial process is forked from (it imports the heavy stack once), and where their stderr goes."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from typing import Any

from sysprune._compat import forkserver_pid
from sysprune._signals import interruptible
from sysprune._compat import popen_class as _popen_class
from sysprune.exceptions import TrialProcessError

PRELOAD = ["sysprune.trial._preload"]
#: "0": the fork server does not import torch (read by ``_preload`` in the server, which inherits the environment).
PRELOAD_TORCH_ENV = "SYSPRUNE_PRELOAD_TORCH"

_CTX: Any = None
#: The fork server's pid -> the PRELOAD_TORCH_ENV value it started with ("0": without torch).
_started_with: dict[int, str] = {}
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
        lacks_torch = _started_with.get(pid) == "0" and os.environ.get(PRELOAD_TORCH_ENV) == "1"
        if (cap.is_stderr_of(pid) and not lacks_torch) or cap.live > 1:
            return  # capturing already (or in use by another trial process of this worker: left alone)
        # Started elsewhere, without the capture file (a test, a user's own forkserver process), or without the
        # torch a study of this process now needs: restart it.
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.005)
    resource_tracker.ensure_running()
    saved = os.dup(2)
    try:
        os.dup2(cap.fd, 2)
        forkserver.ensure_running()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    started = forkserver_pid()
    if started is not None:
        _started_with[started] = os.environ.get(PRELOAD_TORCH_ENV, "1")


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


@interruptible  # a Ctrl-C while the fork server imports the stack stops at once (nothing is stored meanwhile)
def needs_torch(requires: tuple[str, ...], loaded: bool) -> bool:
    """Whether trial processes of a model need torch preloaded: its family requires it (``requires=("torch",)``,
    the built-in torch families) or its module imported torch when the worker loaded it (``loaded``)."""
    return "torch" in requires or loaded


def preload_torch(needed: bool) -> None:
    """Before the fork server starts: whether it imports torch (a scikit-learn or plugin study that never uses it
    saves ~3 s of CPU and ~600 MB per worker). A server already running is left as it is."""
    os.environ[PRELOAD_TORCH_ENV] = "1" if needed else "0"


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
