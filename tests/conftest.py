"""Shared fixtures.

Real datasets: tests marked ``data`` read ``SYSPRUNE_DATA_DIR`` (CI points it at ../shared/data). When it is not
set, ``../shared/data`` beside the checkout is used if present. If the data is absent the tests *fail* under CI
(``CI`` set) and are skipped, with the reason, elsewhere.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from tests._cli import run_command, run_in_process
from tests._require import missing

REPO = Path(__file__).resolve().parents[1]


def _data_dir() -> Path | None:
    env = os.environ.get("SYSPRUNE_DATA_DIR")
    if env:
        return Path(env)
    guess = REPO.parent / "shared" / "data"
    return guess if guess.is_dir() else None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = _data_dir()
    if d is None or not (d / "pmlb").is_dir() or not (d / "MNIST" / "raw").is_dir():
        missing(
            f"real datasets not found (SYSPRUNE_DATA_DIR={os.environ.get('SYSPRUNE_DATA_DIR')!r}, guess ../shared/data)"
        )
    return d


@pytest.fixture
def cache_dir(tmp_path_factory) -> Path:
    """A private array cache per test session (prepared datasets are reused across tests in one run)."""
    return tmp_path_factory.getbasetemp() / "array-cache"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def rdb_url(request, tmp_path) -> str:
    """Every storage backend, as Optuna's storage tests do: a real SQLite file, then the PostgreSQL server of
    SYSPRUNE_TEST_POSTGRES_URL (tools/start-postgres.sh). Without it: fail under CI, skip with the reason
    elsewhere. Studies on PostgreSQL share one database: give them unique names."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    pg = os.environ.get("SYSPRUNE_TEST_POSTGRES_URL")
    if not pg:
        missing("SYSPRUNE_TEST_POSTGRES_URL not set (tools/start-postgres.sh starts a server)")
    return pg


@pytest.fixture(params=["in-process", pytest.param("command", marks=pytest.mark.slow)])
def cli(request):
    """``cli(*args, env=..., cwd=...)``: the sysprune command line for a check that ends before a study runs (bad
    input, help). Each such test runs twice: through ``sysprune.cli.main`` in this process (milliseconds: the fast
    loop) and as the real command in a new interpreter (a second each: marked slow, so ``make test`` only)."""
    return run_in_process if request.param == "in-process" else run_command


@pytest.fixture(autouse=True)
def _release_postgres_connections(request):
    """After a PostgreSQL test, free the connection pools of the storages it dropped. A study refused with an
    exception leaves its storage in a reference cycle (traceback, frames) until the cyclic collector runs, so without
    this one test process held ~36 of the server's connection slots at once in tests/test_resume.py."""
    yield
    if request.node.get_closest_marker("postgres") is not None:
        gc.collect()


@pytest.fixture
def new_db(rdb_url):
    """An empty database on every storage backend (rdb_url): a new SQLite file, or a new PostgreSQL schema dropped
    afterwards (tests._workers_util.fresh)."""
    from tests._workers_util import fresh

    url, drop = fresh(rdb_url)
    yield url
    drop()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


def pytest_configure(config) -> None:
    # Prepared arrays go to a per-run folder, never into the user's ~/.cache (subprocesses inherit it).
    if "SYSPRUNE_CACHE_DIR" not in os.environ:
        import tempfile

        os.environ["SYSPRUNE_CACHE_DIR"] = tempfile.mkdtemp(prefix="sysprune-test-cache-")
