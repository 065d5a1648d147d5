"""No process outlives its trial, nor its worker.

* **A trial's processes are a tree it owns.** Each trial process leads a process group of its own (``setpgid``) and
  is a *subreaper* (``PR_SET_CHILD_SUBREAPER``): whatever it starts — a ``subprocess``, an ``os.fork``, a
  DataLoader's workers, their children — stays in its group, and an orphaned grandchild (its parent gone, or a
  daemon that double-forked, even one that left the group with ``setsid``) becomes the trial process's own child
  instead of init's, so walking ``/proc`` from the trial process finds every one of them.
* **Ending a trial ends the tree**: :func:`kill_tree` freezes the trial process and every descendant (SIGSTOP until
  no new process appears: a stopped process cannot fork), then SIGKILLs them and the process group. A trial process
  that finishes on its own kills and reaps its descendants first (:func:`end_descendants`), so their CPU is in its
  own total. One gap: a trial process that dies on its own (a crash, the OOM killer) leaves its descendants to
  init; the process group still reaches them, except one that left it with ``setsid``.
* **Ending a worker ends its trials**, even by ``kill -9``: the fork server asks the kernel for SIGTERM when the
  worker dies (``PR_SET_PDEATHSIG``) and then kills the tree of every trial process it forked before exiting; each
  trial process also gets SIGKILL when the fork server dies (set in every process it forks, through an at-fork
  hook), in case the fork server could not act.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from typing import Any

import psutil

from sysprune.metrics._monitor import children, descendants

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_PR_SET_CHILD_SUBREAPER = 36
_LIBC: Any = None
_FORKER = 0  # the pid of the process that is forking (set just before each fork)


def _prctl(option: int, value: int) -> bool:
    """``prctl(option, value)`` (Linux); False where unsupported."""
    global _LIBC
    if not sys.platform.startswith("linux"):
        return False
    try:
        if _LIBC is None:
            import ctypes

            _LIBC = ctypes.CDLL(None, use_errno=True)
        return _LIBC.prctl(option, int(value), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _set_pdeathsig(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux). False where unsupported."""
    return _prctl(_PR_SET_PDEATHSIG, sig)


def _note_forker() -> None:
    global _FORKER
    _FORKER = os.getpid()


def _child_dies_with_parent() -> None:
    # The fork server's SIGTERM handler is not the child's business.
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # PR_SET_PDEATHSIG is cleared in a forked child: set it again, then make sure the parent did not die before.
    if _set_pdeathsig() and os.getppid() != _FORKER:
        os._exit(1)


def _end_trials_and_exit(signum: int, frame: Any) -> None:
    """The fork server's SIGTERM (its worker died): end every trial process's tree, then itself."""
    try:
        for pid in children(os.getpid()):
            kill_tree(pid)
    finally:
        os._exit(128 + signum)


def die_with_parent() -> None:
    """This process (the fork server) ends, with the trees of the trial processes it forked, when its parent (the
    worker) dies; every process it forks from now on is killed (SIGKILL) when its own parent dies.

    Called once by the fork server (``sysprune.trial._preload``). The parent's liveness is checked right after the
    request, so a parent that died just before cannot leave an orphan. Linux only (a no-op elsewhere). The kernel's
    "parent" is the *thread* that started the process: the fork server is started from the thread that starts the
    first trial process or calls :func:`warm_up` (the runner's main thread), and it dies if that thread ends.
    """
    parent = os.getppid()
    signal.signal(signal.SIGTERM, _end_trials_and_exit)
    if not _set_pdeathsig(signal.SIGTERM):
        return
    if os.getppid() != parent:
        os._exit(1)
    os.register_at_fork(before=_note_forker, after_in_child=_child_dies_with_parent)


# ------------------------------------------------------------------------------------------------ the trial's tree


def become_tree_root() -> None:
    """Called first thing in a trial process: lead a process group of its own, and adopt orphaned descendants."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def _state(pid: int) -> str:
    """The process state letter of ``/proc/<pid>/stat`` ("" when gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return ""
    return text[text.rfind(b")") + 2 :][:1].decode()


def stop_tree(root: int, *, include_root: bool = True, timeout_s: float = 2.0) -> list[int]:
    """SIGSTOP ``root`` (unless ``include_root`` is False) and every descendant, again and again until a walk finds
    no new process: a stopped process cannot fork, so the tree is then complete and frozen. Returns the pids."""
    stopped: list[int] = []
    deadline = time.monotonic() + timeout_s
    while True:
        tree = ([root] if include_root else []) + descendants(root)
        new = [p for p in tree if p not in stopped]
        if not new or time.monotonic() > deadline:
            return stopped
        for p in new:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p, signal.SIGSTOP)
            stopped.append(p)
        # A stop takes effect when the process next leaves the kernel: wait for it, or a fork it is making now
        # would add a child after the next walk.
        while time.monotonic() < deadline and any(_state(p) not in ("T", "t", "Z", "X", "") for p in new):
            time.sleep(0.0005)


def _kill_all(pids: list[int], group: int | None) -> None:
    if group is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    for p in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGKILL)


def kill_tree(pid: int, proc: psutil.Process | None = None) -> None:
    """SIGKILL process ``pid`` and every process it started (see the module docstring).

    ``proc``: the process as it was when it started (psutil tells a reused pid apart by its start time); without
    it, ``pid`` is taken to be the process meant. A process already gone is not looked up again: its group is
    killed only while no process holds its pid (a group keeps the id of its first leader, and no new process can
    take an id a group still has).
    """
    try:
        alive = proc.is_running() if proc is not None else psutil.pid_exists(pid)
    except psutil.Error:
        alive = False
    if alive:
        tree = stop_tree(pid)
        try:
            group = pid if os.getpgid(pid) == pid else None
        except OSError:
            group = None
        _kill_all(tree, group)
    elif not psutil.pid_exists(pid):
        _kill_all([], pid)  # its orphans, if any, still in its group


def end_descendants(timeout_s: float = 5.0) -> None:
    """In a trial process that is done: kill every process it started and reap them, so that their CPU time is in
    this process's children times (``os.times``) before it reports its totals."""
    me = os.getpid()
    tree = stop_tree(me, include_root=False)
    if not tree:
        return
    _kill_all(tree, None)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:  # a subreaper: the killed grandchildren are this process's children now
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.001)
