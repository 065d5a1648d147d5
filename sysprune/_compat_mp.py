"""CPython's private names sysprune relies on: multiprocessing's fork server (a part of :mod:`sysprune._compat`,
which re-exports every name here; tests/test_compat.py checks them against the installed Python)."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from typing import Any

from sysprune.exceptions import CompatError


def new_forkserver(preload: list[str]) -> Any:
    """A multiprocessing fork server of one's own (``multiprocessing.forkserver.ForkServer``; not the process-wide
    one the trial processes come from), importing ``preload`` when it starts (``ensure_running()``)."""
    from multiprocessing import forkserver

    if not hasattr(forkserver, "ForkServer"):  # the rest of what its children need: popen_class checks it
        raise CompatError(f"multiprocessing.forkserver has no ForkServer in Python {sys.version.split()[0]}")
    server = forkserver.ForkServer()
    server.set_forkserver_preload(preload)
    return server


def forkserver_state(server: Any) -> int | None:
    """The pid of a fork server made by :func:`new_forkserver` (None before it started, or once stopped)."""
    pid: int | None = server._forkserver_pid
    return pid


def kill_forkserver(server: Any) -> None:
    """End a fork server made by :func:`new_forkserver` at once (SIGKILL), reap it, and release its pipe and
    socket; its children are left to end with it (their own ``PR_SET_PDEATHSIG``)."""
    import signal

    pid, fd, address = server._forkserver_pid, server._forkserver_alive_fd, server._forkserver_address
    server._forkserver_pid = server._forkserver_alive_fd = server._forkserver_address = None
    if pid is not None:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    with contextlib.suppress(OSError):
        if fd is not None:
            os.close(fd)
    with contextlib.suppress(OSError):
        if isinstance(address, str) and address and not address.startswith("\0"):
            os.unlink(address)


def forget_inherited_forkserver() -> None:
    """In a process forked by a fork server: close the copy of that server's "alive" pipe it inherited, so the
    server ends with its own launcher, not with its last child (multiprocessing keeps it in the process-wide
    ``_forkserver``, where this process would otherwise hold it for its whole life)."""
    from multiprocessing import forkserver

    server: Any = forkserver._forkserver  # typeshed declares none of its private attributes
    if server._forkserver_pid is None and server._forkserver_alive_fd is not None:
        with contextlib.suppress(OSError):
            os.close(server._forkserver_alive_fd)
        server._forkserver_alive_fd = None


def popen_class(server: Any = None) -> type:
    """multiprocessing's fork-server Popen, minus one thing: it does not re-import the caller's ``__main__`` in
    every trial process (the target lives in sysprune, so that import only costs time, and a user's script
    without an ``if __name__ == "__main__"`` guard would otherwise re-run itself in each trial).

    ``server``: a fork server of :func:`new_forkserver` to ask instead of the process-wide one; its children keep
    multiprocessing's handling of ``__main__`` (each imports a script's ``__main__``, as spawn does: Python 3.11's
    fork server does not preload it)."""
    from multiprocessing import forkserver, popen_forkserver, spawn, util
    from multiprocessing.context import (  # type: ignore[attr-defined]  # typeshed omits context.reduction
        reduction,
        set_spawning_popen,
    )

    for module, name in (
        (forkserver, "connect_to_new_process"),
        (forkserver, "read_signed"),
        (spawn, "get_preparation_data"),
        (popen_forkserver.Popen, "_launch"),
    ):
        if not hasattr(module, name):
            raise CompatError(f"multiprocessing has no {name} in Python {sys.version.split()[0]}")

    class Popen(popen_forkserver.Popen):
        _fds: list[int]  # set by popen_forkserver.Popen.__init__; typeshed does not declare it

        def _launch(self, process_obj: Any) -> None:  # CPython 3.11 popen_forkserver.Popen._launch, adapted
            prep_data = spawn.get_preparation_data(process_obj._name)
            if server is None:
                prep_data.pop("init_main_from_path", None)
                prep_data.pop("init_main_from_name", None)
            buf = io.BytesIO()
            set_spawning_popen(self)
            try:
                reduction.dump(prep_data, buf)
                reduction.dump(process_obj, buf)
            finally:
                set_spawning_popen(None)
            connect = forkserver.connect_to_new_process if server is None else server.connect_to_new_process
            self.sentinel, w = connect(self._fds)
            _parent_w = os.dup(w)
            # util.close_fds is private to CPython and missing from typeshed.
            self.finalizer = util.Finalize(self, util.close_fds, (_parent_w, self.sentinel))  # type: ignore[attr-defined]
            with open(w, "wb", closefd=True) as f:
                f.write(buf.getbuffer())
            self.pid = forkserver.read_signed(self.sentinel)

    return Popen


def forkserver_pid() -> int | None:
    """The pid of this process's multiprocessing fork server, or None before it was started."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    if server is None or not hasattr(server, "_forkserver_pid"):
        raise CompatError(
            f"multiprocessing.forkserver has no _forkserver._forkserver_pid in Python {sys.version.split()[0]}"
        )
    pid: int | None = server._forkserver_pid
    return pid
