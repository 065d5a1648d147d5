"""No process outlives its worker: ``PR_SET_PDEATHSIG`` for the fork server and every process it forks."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_LIBC: Any = None
_FORKER = 0  # the pid of the process that is forking (set just before each fork)


def _set_pdeathsig(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux). False where unsupported."""
    global _LIBC
    if not sys.platform.startswith("linux"):
        return False
    try:
        if _LIBC is None:
            import ctypes

            _LIBC = ctypes.CDLL(None, use_errno=True)
        return _LIBC.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _note_forker() -> None:
    global _FORKER
    _FORKER = os.getpid()


def _child_dies_with_parent() -> None:
    # PR_SET_PDEATHSIG is cleared in a forked child: set it again, then make sure the parent did not die before.
    if _set_pdeathsig() and os.getppid() != _FORKER:
        os._exit(1)


def die_with_parent() -> None:
    """This process, and every process it forks from now on, is killed (SIGKILL) when its parent dies.

    Called once by the fork server (``sysprune.trial._preload``): the fork server dies with its worker, each trial
    process with the fork server. The parent's liveness is checked right after the request, so a parent that died
    just before cannot leave an orphan. Linux only (a no-op elsewhere). The kernel's "parent" is the *thread* that
    started the process: the fork server is started from the thread that starts the first trial process or calls
    :func:`warm_up` (the runner's main thread), and it dies if that thread ends.
    """
    parent = os.getppid()
    if not _set_pdeathsig():
        return
    if os.getppid() != parent:
        os._exit(1)
    os.register_at_fork(before=_note_forker, after_in_child=_child_dies_with_parent)
