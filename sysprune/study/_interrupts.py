"""Ctrl-C and SIGTERM in a worker: what they raise, how a trial records them, and blocks they must not cut short."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from sysprune.study._lost import INTERRUPTED


EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the running trial is stopped and recorded, the study kept."""


def raise_terminated(signum: int, frame: Any) -> None:
    """A SIGTERM handler: raise :class:`Terminated` in the main thread (``signal.signal(SIGTERM, ...)``)."""
    raise Terminated()


def interrupted_reason(e: BaseException) -> str:
    return f"{INTERRUPTED} ({'SIGTERM' if isinstance(e, Terminated) else 'SIGINT'})"


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """SIGINT and SIGTERM ignored for the block (main thread only), then the previous handlers back."""
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
def signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM blocked in the main thread for the block and delivered when it ends (a worker has no
    other thread that could take them meanwhile: Optuna's heartbeat thread runs only during a trial)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
