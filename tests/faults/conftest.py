"""The fault suite's harness: every case under ``tests/faults/`` injects one fault, and the suite ends with a figure.

Each test here is one *case*: it injects a fault (a killed process, a database that goes away, a hostile name, a
credential in a URL, ...) and asserts the documented outcome (one line, the documented exit status, no traceback).
The harness adds, around every case:

* a tag: ``SYSPRUNE_FAULT_TAG`` in the environment, inherited by every process the case starts;
* after the case, the processes it left: children of this process started during the case (not multiprocessing's
  fork server and resource tracker, kept for the test process's life) and any process whose environment carries the
  tag. They get a short grace to exit; one still there is a failure of the case (and is killed, so that one leak
  does not spill into the next case);
* :func:`trials_lost` / :func:`check_database`: a case that runs trials reports the ones it lost (a trial left
  RUNNING, a finished run short of its trials) and checks the file's ``PRAGMA integrity_check``.

At the end: ``fault suite: N faults injected, S survived, T trials lost, P processes left`` (``make test-faults``;
``make test`` runs the same cases, so CI prints it too). A case survived when its test and its checks passed.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from dataclasses import dataclass, field

import psutil
import pytest

TAG_ENV = "SYSPRUNE_FAULT_TAG"
#: How long a process a case started may take to exit once the case is over.
GRACE_S = 10.0


@dataclass
class _Tally:
    injected: int = 0
    survived: int = 0
    trials_lost: int = 0
    processes_left: int = 0
    failed: list[str] = field(default_factory=list)
    known_gaps: list[str] = field(default_factory=list)


_tally = _Tally()


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here + os.sep):
            item.add_marker(pytest.mark.faults)


#: Process-wide helpers multiprocessing starts once for the test process and keeps for its life (the fork server a
#: trial process is forked from, its resource tracker): the test process's, not a case's.
_SINGLETONS = ("multiprocessing.forkserver", "multiprocessing.resource_tracker")


def _is_singleton(p: psutil.Process, me: int) -> bool:
    return p.ppid() == me and any(s in " ".join(p.cmdline()) for s in _SINGLETONS)


def _children() -> dict[int, psutil.Process]:
    me, out = os.getpid(), {}
    for p in psutil.Process(me).children(recursive=True):
        try:
            if not _is_singleton(p, me):
                out[p.pid] = p
        except psutil.Error:
            continue
    return out


def _tagged(tag: str, before: frozenset[int] = frozenset()) -> list[psutil.Process]:
    me = psutil.Process()
    found = {pid: p for pid, p in _children().items() if pid not in before}
    for p in psutil.process_iter():
        if p.pid in found or p.pid == me.pid:
            continue
        try:
            if p.environ().get(TAG_ENV) == tag and not _is_singleton(p, me.pid):
                found[p.pid] = p
        except (psutil.Error, OSError):
            continue
    return [p for p in found.values() if _alive(p)]


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def processes_left(tag: str, grace_s: float = GRACE_S, before: frozenset[int] = frozenset()) -> list[str]:
    """The processes of case ``tag`` still alive after ``grace_s`` (each as ``pid cmdline``); they are then killed.
    ``before``: children of the test process that were there before the case (another test's)."""
    deadline = time.monotonic() + grace_s
    left = _tagged(tag, before)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = _tagged(tag, before)
    shown = []
    for p in left:
        try:
            shown.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
            p.kill()
        except psutil.Error:
            continue
    return shown


@dataclass
class Case:
    """What a case reports to the harness (the ``fault`` fixture)."""

    tag: str
    lost: int = 0

    def trials_lost(self, n: int) -> None:
        """Count ``n`` trials this case lost (the suite's figure; any is a failure)."""
        self.lost += n


@pytest.fixture(autouse=True)
def fault(request, monkeypatch):
    """Every case: a tag in the environment, and afterwards no process left and no trial lost."""
    tag = f"{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv(TAG_ENV, tag)
    case = Case(tag)
    before = frozenset(_children())
    yield case
    left = processes_left(tag, before=before)
    request.node.fault_outcome = (len(left), case.lost)
    assert not left, f"processes left by the case: {left}"
    if not hasattr(getattr(request.node, "rep_call", None), "wasxfail"):  # a known gap has failed already
        assert not case.lost, f"trials lost: {case.lost}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Count each case once, when its teardown is reported: survived if setup, test and checks all passed."""
    rep = yield
    if item.get_closest_marker("faults") is None:
        return rep
    if rep.when == "call":
        item.rep_call = rep
    if rep.failed:
        item.fault_failed = True
    if hasattr(rep, "wasxfail"):  # a known gap (xfail, strict): not survived, counted apart
        item.fault_failed = True
        _tally.known_gaps.append(item.nodeid)
    if rep.when == "teardown":
        left, lost = getattr(item, "fault_outcome", (0, 0))
        _tally.injected += 1
        _tally.processes_left += left
        _tally.trials_lost += lost
        if getattr(item, "fault_failed", False):
            _tally.failed.append(item.nodeid)
        else:
            _tally.survived += 1
    return rep


def check_database(path: str, case: Case, *, n_trials: int | None = None) -> dict[str, int]:
    """The trials of every study in the SQLite file at ``path`` by state; ``PRAGMA integrity_check`` must say ok.
    A trial left RUNNING is lost; so is each trial short of ``n_trials`` finished (COMPLETE or PRUNED)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        states = dict(con.execute("SELECT state, count(*) FROM trials GROUP BY state").fetchall())
    finally:
        con.close()
    running = states.get("RUNNING", 0)
    finished = states.get("COMPLETE", 0) + states.get("PRUNED", 0)
    case.trials_lost(running + (max(0, n_trials - finished) if n_trials is not None else 0))
    return states


def pytest_terminal_summary(terminalreporter):
    t = _tally
    if not t.injected:
        return
    terminalreporter.write_sep("-", "fault suite")
    terminalreporter.write_line(
        f"fault suite: {t.injected} faults injected, {t.survived} survived, {t.trials_lost} trials lost, "
        f"{t.processes_left} processes left" + (f" ({len(t.known_gaps)} known gaps, xfail)" if t.known_gaps else "")
    )
    for nodeid in t.failed:
        terminalreporter.write_line(f"  not survived: {nodeid}")
