"""Opening a study database: the one place that knows URLs, heartbeats and which storage a command uses.

* :func:`open_storage` — for running: Optuna's :class:`~optuna.storages.RDBStorage` with heartbeats (a killed
  worker's RUNNING trials become FAIL), after :func:`check_run_url` (an SQLite file's folder must exist; only the
  default storage's ``results/`` is created).
* :func:`open_existing` — for reading (the dashboard, the analyses, :func:`sysprune.load_step_metrics`): the
  database must exist and hold Optuna's tables; nothing is created, not even an empty SQLite file.
* :func:`tune_engine` — what every engine on a study database gets: SQLite's settings and the check that its file
  was not deleted under the run (:mod:`~sysprune.storage._sqlite`), or waiting out a lost server
  (:mod:`~sysprune.storage._reconnect`).
* :func:`default_storage` — ``$SYSPRUNE_STORAGE``, else ``sqlite:///results/sysprune.db``; :func:`paste_url` — a URL
  as a hint may show it (``os.environ["SYSPRUNE_STORAGE"]`` when it holds a credential).
* :func:`mask_url` — every message that shows a URL shows it through this (``postgresql://u:***@host/db``; the
  function lives in :mod:`sysprune._redact`).
* :func:`storage_key` — the one identity of a storage: its URL for an RDB storage, the object otherwise.

The step table itself is :mod:`sysprune.storage._step_table`; the in-process step cache is :mod:`sysprune.pruners._steps`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sysprune import _compat
from sysprune._redact import has_secrets, mask_url, redact, remember
from sysprune.exceptions import DatabaseNotFound, StorageError, first_line
from sysprune.storage._faults import database_fault
from sysprune.storage._reconnect import call_waiting, reached, retry_connects, retry_window
from sysprune.storage._sqlite import (  # noqa: F401 - SQLITE_BUSY_TIMEOUT_S importable from here
    SQLITE_BUSY_TIMEOUT_S,
    check_file_url,
    file_of,
    start_watching,
    tune_sqlite_engine,
    watch_file,
)

if TYPE_CHECKING:
    import optuna
    import sqlalchemy as sa

#: Where ``sysprune run`` and ``sysprune dashboard`` keep studies unless told otherwise.
DEFAULT_STORAGE = "sqlite:///results/sysprune.db"
#: The environment variable that names the storage when ``--storage`` is not given.
STORAGE_ENV = "SYSPRUNE_STORAGE"
#: Heartbeats: a worker beats every ``interval`` s; a RUNNING trial silent for ``grace`` s becomes FAIL.
HEARTBEAT_INTERVAL_S = 60
HEARTBEAT_GRACE_S = 180

#: URL -> the engine of the last storage this process opened on it: the step-metrics table writes through the same
#: pool (a worker then holds ~2 connections to a server: Optuna's, its heartbeat thread's; not a third of its own).
_engines: dict[str, "sa.Engine"] = {}


def shared_engine(url: str) -> "sa.Engine | None":
    """The engine of the last storage opened on ``url`` in this process (:func:`open_storage`, :func:`open_existing`),
    or None."""
    return _engines.get(url)


def default_storage() -> str:
    """The storage a command uses when ``--storage`` is not given: ``$SYSPRUNE_STORAGE`` if set (a URL with a
    password belongs there, not on a command line every local user can read in the process list), else
    :data:`DEFAULT_STORAGE`."""
    return os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE


def paste_url(url: str) -> str:
    """``url`` as a Python expression to paste into a hint: its text when it holds no credential, else
    ``os.environ["SYSPRUNE_STORAGE"]`` (the masked text could not be pasted, the real one must not be shown)."""
    return f'os.environ["{STORAGE_ENV}"]' if has_secrets(url) else repr(url)


def tune_engine(engine: "sa.Engine") -> None:
    """Every engine sysprune opens on a study database goes through this: SQLite's settings and the check that its
    file is still the run's (:mod:`sysprune.storage._sqlite`); for a server, waiting out a lost connection
    (:mod:`sysprune.storage._reconnect`)."""
    tune_sqlite_engine(engine)
    watch_file(engine)
    retry_connects(engine)


def _not_a_url(url: str) -> StorageError:
    return StorageError(
        f"--storage {mask_url(url)!r}: not an SQLAlchemy URL (e.g. {DEFAULT_STORAGE} or "
        f"postgresql+psycopg2://user@host/db, with a password best given in ${STORAGE_ENV})"
    )


def _parse(url: str) -> "sa.URL":
    import sqlalchemy as sa

    try:
        return sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError):  # ValueError: e.g. a port that is not a number
        raise _not_a_url(url) from None


def check_run_url(url: str) -> None:
    """Refuse, before anything is created (a file, a folder, a lock), a storage a study cannot be run in: a URL that
    does not parse, an in-memory SQLite database, an SQLite file whose folder does not exist (only the default
    storage's ``results/`` is created), a bad ``$SYSPRUNE_DB_RETRY_S``.

    Raises:
        StorageError: one line naming the URL (credentials masked) and what to do.
    """
    remember(url)
    _parse(url)
    check_file_url(url, default=DEFAULT_STORAGE)
    retry_window()


def _rdb_storage(url: str, server: bool) -> "optuna.storages.RDBStorage":
    import optuna

    return optuna.storages.RDBStorage(
        url,
        engine_kwargs={"pool_pre_ping": True} if server else None,
        heartbeat_interval=HEARTBEAT_INTERVAL_S,
        grace_period=HEARTBEAT_GRACE_S,
    )


def _open_rdb(url: str, server: bool) -> "optuna.storages.RDBStorage":
    """:func:`_rdb_storage`, opened again when the first try met a passing state: tables another process created at
    the same instant ("already exists": they are there now; once), or — on a server this process has reached before
    (:func:`~sysprune.storage._reconnect.reached`; a worker of a launch that just opened the study) — a refused
    connection waiting can mend, such as a server out of connection slots while many workers start: waited for as a
    connection lost mid-run is (:func:`~sysprune.storage._reconnect.call_waiting`)."""
    import optuna
    import sqlalchemy.exc

    errors = (sqlalchemy.exc.OperationalError, optuna.exceptions.StorageInternalError)

    def reason(e: Any) -> str:
        cause = e.__cause__ if isinstance(e, optuna.exceptions.StorageInternalError) else e
        return first_line(getattr(cause, "orig", None) or cause or e)

    def race_once() -> "optuna.storages.RDBStorage":
        try:
            return _rdb_storage(url, server)
        except errors as e:
            if "already exists" not in reason(e):
                raise
            return _rdb_storage(url, server)

    if not server:
        return race_once()
    return call_waiting(
        mask_url(url), race_once, errors, reason, "cannot open the database %s yet (%s); waiting up to %.0f s"
    )


def open_storage(url: str) -> "optuna.storages.RDBStorage":
    """The study database at ``url``, created if needed, for running studies (heartbeats on, SQLite tuned, a lost
    server waited for). The URL is checked first (:func:`check_run_url`).

    Raises:
        StorageError: one line naming the URL (credentials masked) and the reason.
    """
    import optuna
    import sqlalchemy.exc

    check_run_url(url)
    server = file_of(url) is None
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.9; relied on knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = _open_rdb(url, server)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise _not_a_url(url) from None
    except (sqlalchemy.exc.SQLAlchemyError, OSError, ImportError, optuna.exceptions.StorageInternalError) as e:
        # Optuna wraps what fails while it stamps a new schema (e.g. a server out of connection slots) in a
        # StorageInternalError whose own message guesses "invalid data": the cause is the reason.
        if isinstance(e, optuna.exceptions.StorageInternalError) and e.__cause__ is not None:
            e = e.__cause__  # type: ignore[assignment]
        fault = database_fault(e, url)
        if fault is not None and fault.kind != "lost":  # a full disk, a corrupt file: say what to do
            raise StorageError(f"--storage: {fault}") from None
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise StorageError(f"--storage {mask_url(url)!r}: cannot open the database ({redact(reason)})") from None
    tune_engine(storage.engine)
    _engines[url] = storage.engine
    reached(url)
    start_watching(url)
    return storage


def open_existing(url: str) -> "optuna.storages.RDBStorage":
    """An existing study database, for reading; creates nothing (no file, no table).

    Raises:
        StorageError: the URL is malformed, names an unknown database kind, or the server cannot be reached.
        DatabaseNotFound: the SQLite file is missing or is not a database, or the database holds no Optuna tables.
    """
    import optuna
    import sqlalchemy as sa

    remember(url)
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        raise StorageError(f"not a database URL: {mask_url(url)!r} (expected e.g. {DEFAULT_STORAGE})") from None
    shown = mask_url(parsed)
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if not db or db == ":memory:":
            raise DatabaseNotFound(
                f"{shown!r} is an in-memory database with no studies; pass the study file, e.g. {DEFAULT_STORAGE}"
            )
        path = Path(db)
        if not path.is_file():
            raise DatabaseNotFound(
                f"no study database at {db} (from {shown}); run `sysprune run` first, or name the database that "
                "holds the study"
            )
        # The file is not opened here to check its header: closing any descriptor of a database file drops every
        # POSIX lock this process holds on it, through its other SQLite connections too (sqlite.org/howtocorrupt,
        # 2.2) - which let a writer corrupt a database that a reader had loaded before. SQLite says it below.
    try:
        engine = sa.create_engine(parsed)
        try:
            tune_sqlite_engine(engine)
            with engine.connect() as conn:
                tables = set(sa.inspect(conn).get_table_names())
        finally:
            engine.dispose()
    except sa.exc.NoSuchModuleError:
        raise StorageError(f"unknown database kind {parsed.drivername!r} in {shown}") from None
    except (sa.exc.SQLAlchemyError, ImportError) as e:
        first = redact(str(getattr(e, "orig", None) or e).strip().splitlines()[0])
        if parsed.get_backend_name() == "sqlite" and "not a database" in first:
            raise DatabaseNotFound(f"{parsed.database} is not an SQLite database (from --storage {shown})") from None
        if isinstance(e, ImportError) and parsed.drivername == "postgresql":
            first += " (with psycopg2 installed, write postgresql+psycopg2://...)"
        raise StorageError(f"cannot open {shown}: {first}") from None
    if "studies" not in tables:
        raise DatabaseNotFound(f"{shown} holds no Optuna studies (no 'studies' table)")
    storage = optuna.storages.RDBStorage(
        url,
        engine_kwargs=None if parsed.get_backend_name() == "sqlite" else {"pool_pre_ping": True},
        skip_compatibility_check=True,
        skip_table_creation=True,
    )
    tune_engine(storage.engine)
    _engines[url] = storage.engine
    reached(url)
    return storage


def storage_key(storage: Any) -> tuple[str, str | int]:
    """One identity per database: ``("rdb", url)`` for an RDB storage (Optuna's cache wrapper looked through),
    ``("object", id)`` for any other storage object (in memory, journal: one per object in this process)."""
    backend = _compat.rdb_backend(storage)
    if backend is not None:
        return ("rdb", backend.url)
    return ("object", id(_compat.unwrap_storage(storage)))
