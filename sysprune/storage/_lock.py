"""sysprune's lock on a study database: short, bounded pieces of work that concurrent workers must not interleave.

PostgreSQL: a session advisory lock (released by the server when its holder's connection drops). SQLite: an
exclusive ``flock`` on ``<database>-sysprune.lock`` beside the file, taken with ``filelock`` (released by the kernel
when its holder dies).
Held to create the schema and a study (N workers started at once on a new database), and to claim a trial slot
(:func:`claim_lock`: on PostgreSQL the same lock at transaction level, so the claim is one transaction).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import weakref
from collections.abc import Iterator
from typing import Any

from sysprune.exceptions import DatabaseFault, StorageError
from sysprune.storage._open import DEFAULT_STORAGE
from sysprune.storage._reconnect import retry_connects
from sysprune.storage._sqlite import check_file_url


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(b"sysprune:" + name.encode()).digest()[:8], "little", signed=True)


#: The advisory-lock key of each engine's schema (a worker claims a slot per trial on the same engine).
_schema_keys: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()


@functools.lru_cache(maxsize=64)
def _backend_and_database(url: str) -> tuple[str | None, str | None]:
    """(backend name, database) of ``url``; (None, None) when it does not parse (make_storage then says why)."""
    import sqlalchemy

    try:
        parsed = sqlalchemy.make_url(url)
        return parsed.get_backend_name(), parsed.database
    except (sqlalchemy.exc.ArgumentError, ValueError):  # ValueError: a port not a number
        return None, None


def _schema_key(engine: Any, conn: Any, *, keep: bool = True) -> int:
    """The advisory-lock key of the schema ``engine``'s tables live in, as the server sees it (not the URL: workers
    on other machines reach the same server under other host names); one query per engine (``keep``), not one per
    claim."""
    import sqlalchemy

    key = _schema_keys.get(engine)
    if key is None:
        key = _lock_key(conn.execute(sqlalchemy.text("SELECT current_schema()")).scalar() or "")
        if keep:
            _schema_keys[engine] = key
    return key


@contextlib.contextmanager
def claim_lock(url: str, engine: Any) -> Iterator[Any]:
    """sysprune's lock on the database of ``url`` for a slot claim, and the connection to claim on.

    PostgreSQL: a transaction of ``engine`` that holds the advisory lock :func:`database_lock` takes, at transaction
    level (``pg_advisory_xact_lock``: let go at its commit or rollback — no unlock round trip, nothing outlives a
    broken connection); the block's count and insert run on it and commit together. Other databases:
    :func:`database_lock` is held around the block, which gets ``None``: the count runs on a connection of its own
    and the insert in a write transaction of its own (an SQLite transaction that reads and then writes fails at once,
    without waiting, when another connection wrote in between).
    """
    import sqlalchemy

    if _backend_and_database(url)[0] != "postgresql":
        with database_lock(url, engine):
            yield None
        return
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _schema_key(engine, conn)})
        yield conn


@contextlib.contextmanager
def database_lock(url: str, engine: Any = None) -> Iterator[Any]:
    """Hold sysprune's lock on the database of ``url`` (see the module docstring).

    SQLite: an exclusive ``flock`` on ``<database>-sysprune.lock``; PostgreSQL: ``pg_advisory_lock`` on a
    connection of ``engine`` (a new one when None). Other databases and in-memory SQLite: no lock (one worker).
    If the lock cannot be taken because the database cannot be reached, the block runs unlocked: opening the
    storage then reports why, in one line. Yields the lock's connection on PostgreSQL (autocommit: the holder may
    run its short reads on it instead of taking another connection from the pool), else None.
    """
    import sqlalchemy

    backend, database = _backend_and_database(url)
    if backend == "sqlite":
        if not database or database == ":memory:" or database.startswith("file:"):
            yield
            return
        from filelock import FileLock  # only SQLite databases take a file lock

        check_file_url(url, default=DEFAULT_STORAGE)  # a missing folder is refused, never created for the lock
        path = database + "-sysprune.lock"
        new = not os.path.exists(path)
        lock = FileLock(path, mode=0o644)  # flock: the kernel drops it with its holder
        try:
            lock.acquire()
        except OSError:  # a folder that cannot be written: make_storage says why
            yield
            return
        try:
            yield
        except Exception as e:
            # The database was never made, or cannot be used (corrupt, not a database): leave no lock file behind.
            # (Only a lock file this call created; another worker waiting on it fails on the same database.)
            if new and (not os.path.exists(database) or isinstance(e, (StorageError, DatabaseFault))):
                _unlink(path)
            raise
        finally:
            lock.release()
        return
    if backend == "postgresql":
        own = engine is None
        conn = None
        try:
            if own:
                engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
                retry_connects(engine)
            # Autocommit: a session lock needs no transaction, and each statement is one round trip (no BEGIN,
            # no COMMIT): a worker takes this lock for every trial it claims.
            conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            # Advisory locks are per database; the key names the schema the tables live in.
            key = _schema_key(engine, conn, keep=not own)
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
        except Exception:  # unreachable, no driver, ...: make_storage says why
            if conn is not None:
                conn.close()
            conn = None
        if conn is None:
            yield None
            return
        try:
            yield conn
        finally:
            try:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            finally:
                conn.close()
                if own:
                    engine.dispose()
        return
    yield
