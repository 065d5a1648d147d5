"""Helpers shared by the worker tests: a fresh database per test, the real command line, the study's state."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    import optuna

REPO = Path(__file__).resolve().parents[1]

# A study whose trials are slow enough to be caught mid-step, with a continuous parameter (no chance collisions).
SLOW = """
model = "tests.workloads.alloc"
steps = {steps}
n_trials = {n_trials}
seed = 5
[dataset]
name = "digits"
[sampler]
name = "random"
[search_space]
spin_ms = {{type = "float", low = {lo}, high = {hi}}}
mb = 1
"""


def study_file(tmp_path: Path, *, steps: int = 2, n_trials: int = 4, lo: float = 5.0, hi: float = 10.0) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(SLOW.format(steps=steps, n_trials=n_trials, lo=lo, hi=hi))
    return p


def fresh(url: str):
    """A new, empty database: the SQLite file of ``url`` (not created yet), or a fresh PostgreSQL schema.
    Returns (url, drop)."""
    if url.startswith("sqlite"):
        return url, lambda: None
    schema = "h4b_" + uuid.uuid4().hex[:10]
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as c:
        c.execute(sa.text(f"CREATE SCHEMA {schema}"))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}", drop


def sysprune_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "sysprune.cli", *args]


def popen(*args: str, cwd: Path = REPO) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        sysprune_cmd(*args), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(sysprune_cmd(*args), cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def wait_for(predicate, timeout: float = 120.0, every: float = 0.1) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {predicate.__doc__ or predicate}")


def steps_stored(url: str, number: int, study: str = "s") -> int:
    """How many steps of trial ``number`` have rows in the step table: 0 while the table does not exist yet or the
    database cannot be reached (a server stopped on purpose). Read without creating anything (a reader's
    create_all would race with the worker's on a new database)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as c:
            if not sa.inspect(c).has_table("sysprune_step_metrics"):
                return 0
            return c.execute(
                sa.text(
                    "SELECT COUNT(DISTINCT step) FROM sysprune_step_metrics WHERE study_name = :s AND trial_number = :n"
                ),
                {"s": study, "n": number},
            ).scalar()
    except sa.exc.OperationalError:
        return 0
    finally:
        engine.dispose()


def heartbeat_storage(url: str, *, interval: int, grace: int) -> "optuna.storages.RDBStorage":
    """An RDB storage with Optuna's heartbeat (``interval``, ``grace`` in s) and sysprune's lost-trial callback."""
    import warnings

    import optuna

    from sysprune.study._lost import install_lost_trial_callback

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(url, heartbeat_interval=interval, grace_period=grace)
    install_lost_trial_callback(storage)
    return storage


def running_trial(study: "optuna.Study", x: float, worker: dict | None) -> "optuna.Trial":
    """A RUNNING trial with parameter ``x`` and, if given, the worker record ``worker`` (user attr)."""
    from sysprune.study._lost import WORKER_ATTR

    study.enqueue_trial({"x": x})
    t = study.ask()
    assert t.suggest_float("x", 0.0, 1.0) == x
    if worker is not None:
        t.set_user_attr(WORKER_ATTR, worker)
    return t


class Transactions:
    """``with Transactions() as tx:`` the statements of each connection taken from any SQLAlchemy pool of this
    process while the block runs, one list per checkout (``tx.taken``): the study's storage and the step table may
    have engines of their own."""

    def __init__(self) -> None:
        self.taken: list[list[str]] = []

    def _checkout(self, *_) -> None:
        self.taken.append([])

    def _execute(self, conn, cursor, statement, *_) -> None:
        if self.taken:
            self.taken[-1].append(re.sub(r"\s+", " ", statement))

    def __enter__(self) -> "Transactions":
        sa.event.listen(sa.pool.Pool, "checkout", self._checkout)
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", self._execute)
        return self

    def __exit__(self, *_) -> None:
        sa.event.remove(sa.pool.Pool, "checkout", self._checkout)
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", self._execute)

    def inserting(self, table: str) -> list[list[str]]:
        return [t for t in self.taken if any(s.startswith(f"INSERT INTO {table} ") for s in t)]
