"""Ctrl-C and SIGTERM in a worker: what they raise, how a trial records them.

The mechanism — a handler that records the signal while a study runs and raises it at safe points only, never
inside a storage call — is :mod:`sysprune._signals` (below every layer: the trial process's wait is a safe point);
this module names what a worker needs of it.
"""

from __future__ import annotations

from sysprune._signals import (  # noqa: F401 - the worker's names for them
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    Terminated,
    check,
    exit_code,
    interruptible,
    signals_deferred,
)
from sysprune.study._lost import INTERRUPTED


def interrupted_reason(e: BaseException) -> str:
    return f"{INTERRUPTED} ({'SIGTERM' if isinstance(e, Terminated) else 'SIGINT'})"
