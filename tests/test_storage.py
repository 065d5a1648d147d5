"""sysprune.storage._open: opening a study database — the one place for URLs, SQLite's settings and password masking."""

from __future__ import annotations

import os
import sqlite3

import optuna
import pytest
import sqlalchemy as sa

from sysprune import _compat
from sysprune.storage._open import (
    DEFAULT_STORAGE,
    mask_url,
    open_existing,
    open_storage,
    storage_key,
    tune_sqlite_engine,
)
from sysprune.exceptions import DatabaseNotFound, StorageError
from tests._require import missing


def test_mask_url_hides_the_password_and_leaves_other_text_alone():
    assert mask_url("postgresql+psycopg2://u:secret@h:5432/db") == "postgresql+psycopg2://u:***@h:5432/db"
    assert mask_url("sqlite:///results/x.db") == "sqlite:///results/x.db"
    assert mask_url("not a url") == "not a url"


def test_one_default_storage():
    from sysprune.study._runner import DEFAULT_STORAGE as runner_default
    from sysprune.dashboard._command import DEFAULT_STORAGE as dashboard_default

    assert runner_default is dashboard_default is DEFAULT_STORAGE


def test_open_storage_refuses_a_missing_folder_and_tunes_sqlite(tmp_path):
    db = tmp_path / "sub" / "s.db"
    with pytest.raises(StorageError, match=r"the folder .*sub does not exist; create it first"):
        open_storage(f"sqlite:///{db}")
    assert list(tmp_path.iterdir()) == []  # no folder, no file, no lock
    db.parent.mkdir()
    storage = open_storage(f"sqlite:///{db}")
    assert db.is_file()
    with storage.engine.connect() as conn:
        pragmas = [
            conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in ("journal_mode", "synchronous", "busy_timeout")
        ]
    assert pragmas == ["wal", 1, 30000]  # synchronous=NORMAL is 1
    assert storage.heartbeat_interval == 60 and storage.grace_period == 180


def test_open_storage_errors_are_one_line_without_the_password():
    with pytest.raises(StorageError, match=r"not an SQLAlchemy URL"):
        open_storage("nonsense")
    with pytest.raises(StorageError) as e:
        open_storage("postgresql+psycopg2://u:secret@127.0.0.1:1/db")
    assert "secret" not in str(e.value) and "u:***@" in str(e.value) and "\n" not in str(e.value)


def test_a_server_out_of_connection_slots_is_one_line_naming_it_not_optunas_guess(monkeypatch):
    """Optuna wraps a failure while it stamps the schema in StorageInternalError ("... invalid data in the commit");
    what a user (or a worker's last line) needs is the server's reason."""
    slots = "FATAL:  remaining connection slots are reserved for non-replication superuser connections"

    def refuse(*args, **kwargs):
        try:
            raise sa.exc.OperationalError("connect", {}, Exception(slots))
        except sa.exc.OperationalError as e:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from e

    monkeypatch.setattr(optuna.storages, "RDBStorage", refuse)
    with pytest.raises(StorageError) as e:
        open_storage("postgresql+psycopg2://u:secret@127.0.0.1:1/db")
    message = str(e.value)
    assert "remaining connection slots" in message and "commit" not in message and "\n" not in message
    assert "secret" not in message


@pytest.mark.postgres
def test_a_server_reached_before_that_refuses_a_connection_for_a_moment_is_waited_for_at_open(monkeypatch, caplog):
    """A launch's worker opens the study its launcher opened a moment ago; while 32 workers start, the server can be
    out of connection slots for a moment (seen at 32 workers on max_connections = 100). Once the server was reached,
    such a refusal is waited for (with back-off, in the retry window), as a connection lost mid-run is; a server
    never reached, or one that says something waiting cannot mend, still fails at once (test above)."""
    pg = os.environ.get("SYSPRUNE_TEST_POSTGRES_URL")
    if not pg:
        missing("SYSPRUNE_TEST_POSTGRES_URL not set (tools/start-postgres.sh starts a server)")
    from sysprune.storage import _reconnect

    real = optuna.storages.RDBStorage
    calls = []
    slots = "FATAL:  remaining connection slots are reserved for non-replication superuser connections"

    def busy(*args, **kwargs):
        calls.append(1)
        if len(calls) <= refusals:
            try:
                raise sa.exc.OperationalError("connect", {}, Exception(slots))
            except sa.exc.OperationalError as e:
                raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from e
        return real(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", busy)
    monkeypatch.setattr(_reconnect, "_reached", set())
    refusals = 2
    with pytest.raises(StorageError, match="remaining connection slots"):  # never reached: at once
        open_storage(pg)
    assert len(calls) == 1
    calls.clear()
    _reconnect.reached(pg)
    with caplog.at_level("WARNING", logger="sysprune"):
        assert open_storage(pg).get_all_studies() is not None
    assert len(calls) == 3 and "waiting up to" in caplog.text
    calls.clear()
    monkeypatch.setenv("SYSPRUNE_DB_RETRY_S", "0")  # no window: the one-line error at once
    with pytest.raises(StorageError, match="remaining connection slots"):
        open_storage(pg)
    assert len(calls) == 1


def test_a_schema_another_process_created_at_the_same_instant_is_opened_not_refused(tmp_path, monkeypatch):
    """Two processes creating a new SQLite database's tables at once: the loser's CREATE TABLE fails with "already
    exists" (seen when a test's plain-Optuna reader polled the database `sysprune run` was creating); the tables are
    there, so the storage opens. Any other failure, or the same one twice, is still the one-line error."""
    real = optuna.storages.RDBStorage
    calls = []

    def racing(*args, **kwargs):
        calls.append(1)
        if len(calls) <= failures:
            raise sa.exc.OperationalError("CREATE TABLE", {}, Exception("table study_directions already exists"))
        return real(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    failures = 1
    url = f"sqlite:///{tmp_path / 'race.db'}"
    assert open_storage(url).get_all_studies() == [] and len(calls) == 2
    calls.clear()
    failures = 2
    with pytest.raises(StorageError, match=r"cannot open the database \(table study_directions already exists\)$"):
        open_storage(f"sqlite:///{tmp_path / 'race2.db'}")


def test_open_existing_creates_nothing(tmp_path):
    missing = tmp_path / "nope.db"
    with pytest.raises(DatabaseNotFound, match="no study database at"):
        open_existing(f"sqlite:///{missing}")
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).execute("create table t (x)").connection.close()
    with pytest.raises(DatabaseNotFound, match="holds no Optuna studies"):
        open_existing(f"sqlite:///{empty}")
    assert sa.inspect(sa.create_engine(f"sqlite:///{empty}")).get_table_names() == ["t"]


def test_tune_sqlite_engine_is_idempotent_and_leaves_other_databases_alone(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    tune_sqlite_engine(engine)
    tune_sqlite_engine(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    pg = sa.create_engine("postgresql+psycopg2://u:p@127.0.0.1:1/db")
    tune_sqlite_engine(pg)  # no listener, no connection attempt
    assert not sa.event.contains(pg, "connect", tune_sqlite_engine)


def test_storage_key_is_the_url_for_rdb_and_the_object_otherwise(sqlite_url):
    study = optuna.create_study(storage=sqlite_url)
    assert storage_key(_compat.study_storage(study)) == ("rdb", sqlite_url)
    memory = optuna.storages.InMemoryStorage()
    assert storage_key(memory) == ("object", id(memory))
