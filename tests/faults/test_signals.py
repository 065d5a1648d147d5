"""A Ctrl-C or SIGTERM at any instant of ``sysprune run``: importing, starting up, creating the study, inside a
database call, starting a trial, mid-step, printing the summary.

Each of ``N_INSTANTS`` runs gets one signal at a random instant (a seeded draw over the length of an undisturbed
run); SIGINT goes to the command's whole process group, as a terminal's Ctrl-C does, SIGTERM to the command alone,
as ``kill`` does. Every run must end with one line on stderr and 130 / 143, no traceback; its database must pass
``PRAGMA integrity_check``; no trial may be left RUNNING or lost (a failed one has its configuration queued
again); and no process it started may outlive it (every process inherits a tag in its environment, looked for
afterwards). The one exception, told apart: a signal in the interpreter's own start-up, before the first line of
``import sysprune`` (Python's defaults apply there); such a run must have written and started nothing.
"""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import optuna
import psutil
import pytest
from optuna.trial import TrialState

from sysprune import _signals
from tests._workers_util import REPO, study_file, sysprune_cmd

pytestmark = pytest.mark.faults

N_INSTANTS = 40
PARALLEL = 3  # runs at once: the instants fall where they fall, the test's wall time is what this saves
SEED = int(os.environ.get("SYSPRUNE_FAULT_SEED", "15"))
TAG = "SYSPRUNE_FAULT_TAG"
EXPECTED = {signal.SIGINT: 130, signal.SIGTERM: 143}


@dataclass
class Outcome:
    sig: int
    delay_s: float
    hit: bool  # the signal reached the command before it ended on its own
    returncode: int
    stderr: str
    db: Path
    tag: str


def _tagged(tag: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get(TAG) == tag:
                found.append(p)
        except (psutil.Error, OSError):
            continue
    return found


def _run(spec: Path, db: Path, sig: int | None, delay_s: float, workers: int = 1) -> Outcome:
    tag = uuid.uuid4().hex
    env = {**os.environ, "PYTHONPATH": str(REPO), TAG: tag}
    args = sysprune_cmd("run", str(spec), "--storage", f"sqlite:///{db}", "--quiet", "--no-publish")
    if workers > 1:
        args += ["--workers", str(workers)]
    proc = subprocess.Popen(
        args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    hit = False
    try:
        if sig is not None:
            try:
                proc.wait(delay_s)
            except subprocess.TimeoutExpired:
                hit = True
                if sig == signal.SIGINT:
                    os.killpg(proc.pid, sig)  # a terminal's Ctrl-C: the whole foreground group
                else:
                    proc.send_signal(sig)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return Outcome(sig or 0, delay_s, hit, proc.returncode, err, db, tag)


def _check_database(db: Path, n_trials: int) -> str:
    """Check what the run left; returns where the signal fell, as the database tells it."""
    if not db.exists():
        return "before the database"  # nothing was written
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    try:
        trials = optuna.load_study(study_name="s", storage=f"sqlite:///{db}").get_trials()
    except KeyError:  # the tables exist, the study does not
        return "before the study"
    states = [t.state for t in trials]
    assert TrialState.RUNNING not in states, states
    requeued = {t.system_attrs.get("failed_trial") for t in trials}
    for t in trials:
        if t.state == TrialState.FAIL:  # stopped by the signal: recorded, its configuration queued again
            assert t.user_attrs["error"].startswith("interrupted ("), t.user_attrs
            assert t.number in requeued, (t.number, states)
    done = sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states)
    assert done <= n_trials
    if TrialState.FAIL in states:
        return "in a trial"
    return "between trials" if done < n_trials else "after the trials"


_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
_FIRST_LINE = 1 + next(  # the line of sysprune/__init__.py that imports the handler
    i
    for i, line in enumerate((REPO / "sysprune" / "__init__.py").read_text().splitlines())
    if "import _signals" in line
)

_HANDLER_IMPORTS_END = 1 + next(  # sysprune/_signals.py's first line after its standard-library imports
    i for i, line in enumerate((REPO / "sysprune" / "_signals.py").read_text().splitlines()) if line.startswith("EXIT_")
)


def _before_sysprune(o: Outcome) -> bool:
    """Whether the signal came in the interpreter's own start-up, before the first line of ``import sysprune`` has
    installed its handler (that line loads ``sysprune._signals``, whose standard-library imports come first):
    Python's defaults then apply (SIGTERM kills it silently — the shell reports 143 —, SIGINT may print a
    KeyboardInterrupt traceback from the start-up's imports), which no code of sysprune can change."""
    if o.returncode == -o.sig and not o.stderr:
        return True
    if "KeyboardInterrupt" not in o.stderr or o.sig != signal.SIGINT:
        return False
    ours = [(f, int(n)) for f, n in _FRAME.findall(o.stderr) if f.startswith(str(REPO / "sysprune"))]
    return all(
        (f.endswith("/sysprune/__init__.py") and n == _FIRST_LINE)
        or (f.endswith("/sysprune/_signals.py") and n < _HANDLER_IMPORTS_END)  # the imports that line needs
        for f, n in ours
    )


def _in_a_workers_start_up(o: Outcome) -> bool:
    """Whether a Ctrl-C (sent to the whole process group, as a terminal does) reached a ``--workers`` worker while
    its interpreter was still starting (``site``, before ``import sysprune``): Python prints its own fatal error
    there, which no code of sysprune can change (the same window as the command's own start-up). The launcher must
    still end with its one line and 130, and nothing may be lost or left (checked as for every run)."""
    if o.sig != signal.SIGINT or o.returncode != EXPECTED[signal.SIGINT]:
        return False
    if "Fatal Python error: init_import_site" not in o.stderr or "KeyboardInterrupt" not in o.stderr:
        return False
    ours = [f for f, _ in _FRAME.findall(o.stderr) if f.startswith(str(REPO / "sysprune"))]
    return not ours and o.stderr.strip().splitlines()[-1].startswith("interrupted; the study is kept")


def _signal_runs(tmp_path: Path, n: int, *, workers: int = 1) -> list[Outcome]:
    """``n`` runs, each stopped by one signal at a random instant; checks each and returns those it stopped."""
    n_trials = 3
    spec = study_file(tmp_path, steps=3, n_trials=n_trials, lo=200, hi=400)  # trials a good part of the run
    t0 = time.monotonic()
    ref = _run(spec, tmp_path / "ref.db", None, 0.0, workers)
    length = time.monotonic() - t0
    assert ref.returncode == 0, ref.stderr

    rng = random.Random(SEED + workers)
    plan = [(rng.choice([signal.SIGINT, signal.SIGTERM]), rng.uniform(0.0, 0.9 * length)) for _ in range(n)]
    with ThreadPoolExecutor(PARALLEL) as pool:
        outcomes = list(pool.map(lambda ia: _run(spec, tmp_path / f"{ia[0]}.db", *ia[1], workers), enumerate(plan)))

    phases: Counter[str] = Counter()
    for o in outcomes:
        what = f"{signal.Signals(o.sig).name} at {o.delay_s:.2f} s (seed {SEED}, {workers} worker(s)): "
        what += f"rc {o.returncode}, stderr {o.stderr!r}"
        # a worker's start-up is told first: its traceback has no frame of sysprune either, but the launcher's last
        # line says sysprune ran (and wrote the study), so it is not the command's own start-up
        in_a_worker = _in_a_workers_start_up(o)
        if not in_a_worker and _before_sysprune(o):  # the one window left (docs/ARCHITECTURE.md): nothing written
            assert not o.db.exists() and not _tagged(o.tag), what
            phases["the interpreter's start-up"] += 1
            continue
        if in_a_worker:
            phases["a worker's interpreter start-up"] += 1
        elif o.hit and o.returncode != 0:  # 0: it arrived while the command was already exiting (then ignored)
            assert "Traceback" not in o.stderr, what
            assert o.returncode == EXPECTED[o.sig], what
            lines = [line for line in o.stderr.splitlines() if line.strip()]
            assert len(lines) == 1, what
        else:
            assert "Traceback" not in o.stderr, what
        if not o.hit:
            assert o.returncode == 0, what
        phases[_check_database(o.db, n_trials)] += 1
        end = time.monotonic() + 10
        while (left := _tagged(o.tag)) and time.monotonic() < end:
            time.sleep(0.2)
        assert not [p for p in left if p.status() != psutil.STATUS_ZOMBIE], what
    stopped = [o for o in outcomes if o.hit and o.returncode != 0 and not _before_sysprune(o)]
    print(f"\n{len(stopped)} of {n} signals stopped the run (seed {SEED}, {workers} worker(s)); delays, s:")
    print(" ".join(f"{o.delay_s:.1f}{'' if o in stopped else '*'}" for o in outcomes))
    print("where they fell:", dict(phases))
    return stopped


@pytest.mark.slow
def test_a_signal_at_any_instant_ends_the_run_with_one_line_and_loses_nothing(tmp_path):
    assert len(_signal_runs(tmp_path, N_INSTANTS)) >= 30


@pytest.mark.slow
def test_a_signal_at_any_instant_of_a_run_with_two_workers(tmp_path):
    """``run --workers 2``: the launcher passes the signal on, every worker records its trial, one line."""
    assert len(_signal_runs(tmp_path, 8, workers=2)) >= 6


@pytest.mark.parametrize(
    "argv, command",
    [
        (["/venv/bin/python", "/venv/bin/sysprune", "run", "s.toml"], True),
        (["python", "-m", "sysprune.cli", "run"], True),
        (["python", "-msysprune", "run"], True),
        (["python", "-c", "import sysprune"], False),
        (["python", "script.py", "sysprune"], False),
    ],
)
def test_the_command_is_told_from_a_library_user(argv, command):
    assert _signals.invoked_as_command(argv) is command


def test_a_worker_the_command_spawned_is_told_from_another_spawned_process(monkeypatch):
    """A ``run --workers`` worker re-imports sysprune while it starts: a signal then must end it silently (its
    launcher prints the line), where a library user's own spawned process keeps Python's handling."""
    spawned = ["-c", "--multiprocessing-fork"]
    monkeypatch.delenv("SYSPRUNE_COMMAND_PID", raising=False)
    assert not _signals.is_command_worker(spawned)
    monkeypatch.setenv("SYSPRUNE_COMMAND_PID", "123")
    assert _signals.is_command_worker(spawned) and not _signals.is_command_worker(["-c"])
    server = ["python", "-c", "from multiprocessing.forkserver import main; main(5, 6, ['__main__'], **{})"]
    assert _signals.is_command_worker(server)  # the fork server the workers are forked from
    monkeypatch.delenv("SYSPRUNE_COMMAND_PID")
    assert not _signals.is_command_worker(server)  # a library user's own
