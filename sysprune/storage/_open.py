"""Opening a study database: the one place that knows URLs, SQLite's settings, heartbeats and password masking.

* :func:`open_storage` — for running: Optuna's :class:`~optuna.storages.RDBStorage` with heartbeats (a killed
  worker's RUNNING trials become FAIL), the folder of an SQLite file created, SQLite tuned.
* :func:`open_existing` — for reading (the dashboard, :func:`sysprune.load_step_metrics`): the database must
  exist and hold Optuna's tables; nothing is created, not even an empty SQLite file.
* :func:`tune_sqlite_engine` — WAL journal, ``synchronous=NORMAL`` and a 30 s busy timeout on every connection of
  an SQLite engine (Optuna's and the step table's alike): readers never block writers, a commit costs ~1.5 ms
  instead of ~5 ms, and a writer waits for a lock instead of failing at once.
* :func:`mask_url` — every message that shows a URL shows it through this (``postgresql://u:***@host/db``).
* :func:`storage_key` — the one identity of a storage: its URL for an RDB storage, the object otherwise.

The step table itself is :mod:`sysprune.storage._step_table`; the in-process step cache is :mod:`sysprune.pruners._steps`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sysprune import _compat
from sysprune.exceptions import DatabaseNotFound, StorageError

if TYPE_CHECKING:
    import optuna
    import sqlalchemy as sa

#: Where ``sysprune run`` and ``sysprune dashboard`` keep studies unless told otherwise.
DEFAULT_STORAGE = "sqlite:///results/sysprune.db"
#: How long an SQLite connection waits for a lock before failing.
SQLITE_BUSY_TIMEOUT_S = 30.0
#: Heartbeats: a worker beats every ``interval`` s; a RUNNING trial silent for ``grace`` s becomes FAIL.
HEARTBEAT_INTERVAL_S = 60
HEARTBEAT_GRACE_S = 180


def mask_url(url: Any) -> str:
    """The URL as text with any password masked; text that is not a URL comes back unchanged."""
    try:
        import sqlalchemy as sa

        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not parsable as a URL: mask what would be the password, between the user's ':' and '@'
        text = str(url)
        at = text.rfind("@")
        start = text.find("//")
        start = start + 2 if 0 <= start < at else 0
        colon = text.find(":", start, at) if at > 0 else -1
        return text if colon < 0 else f"{text[: colon + 1]}***{text[at:]}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets a dashboard read while a worker writes; NORMAL sync is safe with WAL and ~4x faster per commit.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cur.close()


def tune_sqlite_engine(engine: "sa.Engine") -> None:
    """Put an SQLite engine (ours or Optuna's) into WAL mode with NORMAL sync and a busy timeout, for every new
    connection; other databases are left alone. An older file in rollback-journal mode is converted once."""
    import sqlalchemy as sa

    if engine.dialect.name != "sqlite":
        return
    if not sa.event.contains(engine, "connect", _sqlite_pragmas):
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        engine.dispose()  # pooled connections made before the listener get replaced


def ensure_sqlite_dir(url: str) -> None:
    """Create the folder of a relative or absolute SQLite file URL (``sqlite:///results/x.db``)."""
    if url.startswith("sqlite:///") and ":memory:" not in url:
        Path(url[len("sqlite:///") :].split("?")[0]).parent.mkdir(parents=True, exist_ok=True)


def open_storage(url: str) -> "optuna.storages.RDBStorage":
    """The study database at ``url``, created if needed, for running studies (heartbeats on, SQLite tuned).

    Raises:
        StorageError: one line naming the URL (password masked) and the reason.
    """
    import optuna
    import sqlalchemy.exc

    try:
        ensure_sqlite_dir(url)
        with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.9; relied on knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(
                url, heartbeat_interval=HEARTBEAT_INTERVAL_S, grace_period=HEARTBEAT_GRACE_S
            )
    except (sqlalchemy.exc.ArgumentError, ValueError):  # ValueError: e.g. a port that is not a number
        raise StorageError(
            f"--storage {mask_url(url)!r}: not an SQLAlchemy URL (e.g. sqlite:///results/sysprune.db or "
            f"postgresql+psycopg2://user:password@host/db)"
        ) from None
    except (sqlalchemy.exc.SQLAlchemyError, OSError, ImportError) as e:
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise StorageError(f"--storage {mask_url(url)!r}: cannot open the database ({reason})") from None
    tune_sqlite_engine(storage.engine)
    return storage


def open_existing(url: str) -> "optuna.storages.RDBStorage":
    """An existing study database, for reading; creates nothing (no file, no table).

    Raises:
        StorageError: the URL is malformed, names an unknown database kind, or the server cannot be reached.
        DatabaseNotFound: the SQLite file is missing or is not a database, or the database holds no Optuna tables.
    """
    import optuna
    import sqlalchemy as sa

    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
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
                f"no study database at {db} (from --storage {shown}); run `sysprune run` first or pass --storage"
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
        first = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        if parsed.get_backend_name() == "sqlite" and "not a database" in first:
            raise DatabaseNotFound(f"{parsed.database} is not an SQLite database (from --storage {shown})") from None
        if isinstance(e, ImportError) and parsed.drivername == "postgresql":
            first += " (with psycopg2 installed, write postgresql+psycopg2://...)"
        raise StorageError(f"cannot open {shown}: {first}") from None
    if "studies" not in tables:
        raise DatabaseNotFound(f"{shown} holds no Optuna studies (no 'studies' table)")
    storage = optuna.storages.RDBStorage(url, skip_compatibility_check=True, skip_table_creation=True)
    tune_sqlite_engine(storage.engine)
    return storage


def storage_key(storage: Any) -> tuple[str, str | int]:
    """One identity per database: ``("rdb", url)`` for an RDB storage (Optuna's cache wrapper looked through),
    ``("object", id)`` for any other storage object (in memory, journal: one per object in this process)."""
    backend = _compat.rdb_backend(storage)
    if backend is not None:
        return ("rdb", backend.url)
    return ("object", id(_compat.unwrap_storage(storage)))
