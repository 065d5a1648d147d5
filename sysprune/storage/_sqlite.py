"""An SQLite study file: where it may be, its connection settings, and noticing that it was deleted or replaced.

* :func:`check_file_url` — a URL to run a study in must name a file (not ``sqlite:///``, not in memory: nothing would
  be kept and no other worker would see it) in a folder that exists; only the default storage's folder
  (``results/``) is created. Nothing is created for any other path, not even a lock file.
* :func:`tune_sqlite_engine` — WAL journal, ``synchronous=NORMAL`` and a 30 s busy timeout on every connection:
  readers never block writers, a commit costs ~1.5 ms instead of ~5 ms, and a writer waits for a lock instead of
  failing at once.
* :func:`watch_file` — before each use of a connection, the file must still be the one the run started with. An
  SQLite connection keeps working on a file that was deleted (or replaced) under it, so a run would go on writing
  into a file nobody can open again; instead the next database call raises :class:`DatabaseFault`. A ``stat`` per
  connection checkout (~2 µs); a new connection of a watched engine (another process's too: a trial's step writer)
  never creates the file anew.
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sysprune._redact import mask_url
from sysprune.exceptions import DatabaseFault, StorageError

if TYPE_CHECKING:
    import sqlalchemy as sa

#: How long an SQLite connection waits for a lock before failing.
SQLITE_BUSY_TIMEOUT_S = 30.0


def file_of(url: Any) -> str | None:
    """The database file an SQLite URL names (as written), ``None`` for another database; ``""`` for an in-memory
    one (``sqlite://``, ``sqlite:///``, ``sqlite:///:memory:``, a ``file:`` URI with ``mode=memory``)."""
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    db = parsed.database or ""
    if db == ":memory:" or (db.startswith("file:") and "mode=memory" in str(parsed)):
        return ""
    return db


def check_file_url(url: str, *, default: str | None = None) -> None:
    """Refuse, in one line, an SQLite URL a study cannot be run in: in memory, or a file whose folder is missing or
    is itself a folder. The folder of ``default`` (the default storage, ``results/``) is created when missing.

    Raises:
        StorageError: naming the URL (credentials masked), the path and what to do.
    """
    db = file_of(url)
    if db is None:
        return
    shown = mask_url(url)
    if not db or db.startswith("file:"):
        if not db:
            raise StorageError(
                f"--storage {shown!r}: an in-memory database keeps nothing and no worker process can reach it; "
                "name a file, e.g. sqlite:///results/sysprune.db"
            )
        return  # a file: URI: SQLite resolves it; opening says why if it cannot
    path = Path(db)
    folder = path.parent
    if path.is_dir():
        raise StorageError(f"--storage {shown!r}: {db} is a folder; name a file in it, e.g. {path / 'sysprune.db'}")
    if not folder.is_dir():
        if url == default and not folder.exists():
            folder.mkdir()
            return
        what = "is not a folder" if folder.exists() else "does not exist"
        raise StorageError(f"--storage {shown!r}: the folder {folder} {what}; create it first, or name another file")


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


# ---------------------------------------------------------------------------------------------------------------
# The file under a running study

#: Resolved path -> (device, inode) of the file a run started with.
_identity: dict[str, tuple[int, int]] = {}
_lock = threading.Lock()
_watched: "weakref.WeakSet[sa.Engine]" = weakref.WeakSet()


def _stat_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def start_watching(url: str) -> None:
    """The run using ``url`` starts now: the file there now is the one to keep using (a file deleted or replaced
    *between* two runs is fine; during one it is not)."""
    db = file_of(url)
    if db:
        key = os.path.abspath(db)
        with _lock:
            ident = _stat_id(key)
            if ident is None:
                _identity.pop(key, None)
            else:
                _identity[key] = ident


def _drop_orphans(path: str) -> None:
    """The ``-wal`` and ``-shm`` files of a deleted database: a new database made at the same path would otherwise
    read the old one's pages back from them (sqlite.org/howtocorrupt, 2.4)."""
    for suffix in ("-wal", "-shm"):
        try:
            os.unlink(path + suffix)
        except OSError:
            pass


def _deleted(path: str, shown: str) -> DatabaseFault:
    return DatabaseFault(
        f"the database file {path} (--storage {shown}) was deleted while the study ran; nothing more was "
        "written to it. Restore it from a copy to go on, or run again to start a new study there",
        "deleted",
    )


def check_same_file(path: str, shown: str) -> None:
    """Raise :class:`DatabaseFault` if the SQLite file at ``path`` (absolute) is gone or is not the file first seen
    there. Pure apart from one ``stat``."""
    ident = _stat_id(path)
    with _lock:
        known = _identity.setdefault(path, ident) if ident is not None else _identity.get(path)
    if ident is None and known is not None:
        _drop_orphans(path)
        raise _deleted(path, shown)
    if ident is not None and known != ident:
        raise DatabaseFault(
            f"the database file {path} (--storage {shown}) was replaced by another file while the study ran; "
            "nothing more was written. Run the same command again to go on in the file that is there now",
            "replaced",
        )


def watch_file(engine: "sa.Engine") -> None:
    """Check, at every connection checkout of an SQLite file engine, that the file is the one the run started with
    (see the module docstring); other engines are left alone."""
    import sqlalchemy as sa

    if engine.dialect.name != "sqlite" or engine in _watched:
        return
    db = engine.url.database or ""
    if not db or db == ":memory:" or db.startswith("file:"):
        return
    path, shown = os.path.abspath(db), mask_url(engine.url)

    def on_checkout(_dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        check_same_file(path, shown)

    def on_connect(_dialect: Any, _record: Any, _cargs: Any, _cparams: Any) -> None:
        # A watched engine's file exists (it was opened or created before the engine was watched): a new connection
        # must not make an empty file in its place (SQLite would), which another process would then write into.
        if _stat_id(path) is None:
            raise _deleted(path, shown)

    sa.event.listen(engine, "checkout", on_checkout)
    sa.event.listen(engine, "do_connect", on_connect)
    _watched.add(engine)
