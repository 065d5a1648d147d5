"""The fork server the worker processes of one launch (``run --workers N``) are forked from.

One interpreter imports sysprune once; each worker is forked from that image. With spawn, every worker imported it
again, ~0.8 s of CPU each: eight workers on two cores started their first trials seconds apart. A script's
``__main__`` is still imported by each worker, as spawn did (for what it registers; so ``run --workers`` from a
script needs its ``if __name__ == "__main__"`` guard, as multiprocessing says): Python 3.11's fork server does
not preload it (it looks for a ``main_path`` that ``get_preparation_data`` no longer gives). The server lives for
one launch, so a worker sees the environment, paths and output of the moment it was launched, as with spawn.

Lifetimes: the server ends when the launch stops it (its workers joined) or, on kill -9 of the launcher, when the
last copy of its "alive" pipe closes (the launcher's; each worker closes the copy it inherits as it starts). Each
worker ends with the server (``PR_SET_PDEATHSIG``, set by the worker itself, which checks that its parent is still
the server afterwards), so no worker outlives its launcher.
"""

from __future__ import annotations

from multiprocessing import context
from typing import Any

from sysprune import _compat

#: What the server imports once: the worker's code and what opening a study imports ("__main__": a script's, where
#: the Python version preloads it; see above).
PRELOAD = ["__main__", "sysprune.study._worker_preload"]

_SERVER: Any = None  # the running launch's WorkerServer (the launcher's side)


class WorkerProcess(context.ForkServerProcess):
    """A worker process forked by the launch's server (picklable: defined at module level)."""

    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        if _SERVER is None:
            raise RuntimeError("no worker server is running (start one with WorkerServer)")
        return _SERVER.popen(process_obj)


class WorkerServer:
    """Start with :meth:`start` (returns its pid), make workers with :meth:`process`, end with :meth:`stop`."""

    def __init__(self) -> None:
        self._server = _compat.new_forkserver(PRELOAD)
        self.popen = _compat.popen_class(self._server)  # a Popen that asks this server for its processes

    def start(self) -> int:
        global _SERVER
        self._server.ensure_running()
        _SERVER = self
        pid = _compat.forkserver_state(self._server)
        assert pid is not None
        return pid

    def process(self, target: Any, args: tuple, name: str) -> WorkerProcess:
        return WorkerProcess(target=target, args=args, name=name)

    def stop(self) -> None:
        """End the server now (its workers are joined, or left to end with it) and reap it."""
        global _SERVER
        if _SERVER is self:
            _SERVER = None
        _compat.kill_forkserver(self._server)
